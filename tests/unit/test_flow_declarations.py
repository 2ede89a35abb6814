"""Flow control is declared on the actor and checked when it is declared."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import inngest
import pytest

import docjobs
from docjobs import registry
from docjobs.brokers.inngest.flow import function_options
from docjobs.flow import Concurrency, Debounce, FlowDeclarationError, RateLimit, Throttle
from docjobs.flow.gate import key_of


@pytest.fixture
def forget() -> Iterator[list[str]]:
    names: list[str] = []
    yield names
    for name in names:
        registry.forget(name)


def test_keys_name_payload_fields_by_parameter_or_alias(forget: list[str]) -> None:
    forget.append("test.flow-keys")

    @docjobs.actor(
        "test.flow-keys",
        concurrency=Concurrency(2, key="document_id"),
        throttle=Throttle(5, period=60, key="webhookId"),
        debounce=Debounce(10, key="documentId"),
    )
    def job(*, document_id: int, webhook_id: str) -> None: ...

    assert job.flow.concurrency == Concurrency(2, key="documentId")
    assert job.flow.throttle == Throttle(5, period=60, key="webhookId")
    assert job.flow.debounce == Debounce(10, key="documentId")
    assert job.flow.rate_limit is None


@pytest.mark.parametrize(
    ("declaration", "message"),
    [
        ({"concurrency": Concurrency(1, key="documentID")}, "key 'documentID' is not a field of the payload"),
        ({"concurrency": Concurrency(0)}, "limit must be a whole number from 1 to"),
        ({"throttle": Throttle(2, period=0.5)}, "period must be from 1 to 86400 seconds, not 0.5"),
        ({"rate_limit": RateLimit(True, period=60)}, "limit must be a whole number"),  # type: ignore[arg-type]
        ({"debounce": Debounce(10**6)}, "period must be from 1 to 86400 seconds"),
        ({"debounce": Throttle(1, period=10)}, "debounce must be a docjobs.flow.Debounce"),
    ],
)
def test_a_wrong_declaration_is_refused_naming_the_job_and_what_is_wrong(
    declaration: dict[str, object], message: str
) -> None:
    with pytest.raises(FlowDeclarationError, match=f"^test.flow-wrong: .*{message}"):

        @docjobs.actor("test.flow-wrong", **declaration)  # type: ignore[arg-type]
        def job(*, document_id: int) -> None: ...

    with pytest.raises(docjobs.ActorNotFound):
        registry.get("test.flow-wrong")  # nothing half-declared


def test_key_values_are_text_and_long_ones_are_hashed() -> None:
    limit = Concurrency(1, key="documentId")
    assert key_of(limit, {"documentId": 73}) == "73"
    assert key_of(limit, {"documentId": "73"}) == "73"
    assert key_of(limit, {}) == "null"
    assert key_of(Concurrency(1), {"documentId": 73}) == ""
    long = key_of(limit, {"documentId": "x" * 500})
    assert long.startswith("sha256:") and len(long) == len("sha256:") + 64


def test_inngest_gets_the_same_limits_as_its_function_options(forget: list[str]) -> None:
    forget.append("test.flow-inngest")

    @docjobs.actor(
        "test.flow-inngest",
        priority=5,
        concurrency=Concurrency(2, key="documentId"),
        throttle=Throttle(5, period=60, key="webhookId"),
        rate_limit=RateLimit(100, period=3600),
        debounce=Debounce(10, key="documentId"),
    )
    def job(*, document_id: int, webhook_id: str) -> None: ...

    options = function_options(job)
    assert options == {
        "concurrency": [inngest.Concurrency(limit=2, key="event.data.documentId")],
        "throttle": inngest.Throttle(limit=5, period=timedelta(seconds=60), key="event.data.webhookId"),
        "rate_limit": inngest.RateLimit(limit=100, period=timedelta(seconds=3600)),
        "debounce": inngest.Debounce(period=timedelta(seconds=10), key="event.data.documentId"),
        # Lower runs first in docjobs, as in Dramatiq: Inngest moves higher values ahead.
        "priority": inngest.Priority(run="-5"),
    }


def test_inngest_counts_a_rate_limit_natively_only_where_docjobs_cannot(forget: list[str]) -> None:
    from docjobs.brokers.inngest.flow import HandlerFlow

    forget.append("test.flow-inngest-rate")

    @docjobs.actor("test.flow-inngest-rate", rate_limit=RateLimit(3, period=60))
    def job(*, document_id: int) -> None: ...

    assert "rate_limit" in HandlerFlow(None, None).options(job)  # no database: Inngest's own
    assert "rate_limit" not in HandlerFlow(object(), None).options(job)  # type: ignore[arg-type]


def test_a_job_without_flow_control_adds_no_inngest_options() -> None:
    import docjobs.actors  # noqa: F401 - declares docjobs' jobs

    assert function_options(registry.get("internal.cleanup-rate-limits")) == {}


def test_a_document_is_sealed_by_one_job_at_a_time() -> None:
    import docjobs.actors  # noqa: F401 - declares docjobs' jobs

    assert registry.get("internal.seal-document").flow.concurrency == Concurrency(1, key="documentId")
