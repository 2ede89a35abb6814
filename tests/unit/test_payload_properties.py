"""Every job type's payload validation against generated payloads (Hypothesis).

For each declared job: any payload either validates to its canonical form, which
holds only the model's fields and validates to itself again, or is refused with a
``PayloadError`` naming the job (and the field, when one is at fault). Nothing else
escapes: no ``TypeError`` from a wrong type, no crash on huge or odd strings.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import docjobs.actors  # noqa: F401 - declares the job types
from docjobs import errors, registry

ODD_TEXT = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        ["", " ", "\x00", "\u202e", "𝕏" * 50, "<script>", "'; --", "a" * 200_000, "1e309", "NaN"]
    ),
)
VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | ODD_TEXT,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(ODD_TEXT, children, max_size=3),
    max_leaves=8,
)
JOBS = sorted(
    job_id for job_id in registry.declared() if not job_id.startswith(("test.", "chaos.", "bench."))
)


def _fields(actor: registry.JobActor[Any, Any]) -> list[str]:
    return [field.alias or name for name, field in actor.payload_model.model_fields.items()]


@st.composite
def payloads(draw: st.DrawFn, fields: list[str]) -> dict[str, Any]:
    """The model's own fields (some missing, some of the wrong type) plus stray ones."""
    chosen = draw(st.lists(st.sampled_from(fields), unique=True)) if fields else []
    payload = {field: draw(VALUES) for field in chosen}
    payload.update(draw(st.dictionaries(ODD_TEXT, VALUES, max_size=2)))
    return payload


@pytest.mark.parametrize("job_id", JOBS)
def test_a_payload_validates_to_its_fields_or_is_refused_naming_the_job(job_id: str) -> None:
    actor = registry.get(job_id)
    fields = _fields(actor)

    @settings(max_examples=60, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])  # fmt: skip
    @given(payload=st.one_of(payloads(fields), VALUES))
    def check(payload: Any) -> None:
        try:
            canonical = actor.validate(payload)
        except errors.PayloadError as exc:
            assert exc.job_id == job_id
            assert job_id in str(exc)
            return
        assert set(canonical) <= set(fields)  # stray fields never reach the job
        assert canonical == actor.validate(canonical)

    check()


def test_every_job_type_is_covered() -> None:
    assert len(JOBS) >= 10, JOBS
