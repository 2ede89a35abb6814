"""What no provider can carry unchanged is refused at send, on every provider, and nothing is written.

Before, NaN and Infinity were stored as ``null``, a NUL in ``id=`` was cut off (so two
different ids collided), a 50 MB payload was stored, and nesting deep enough made the
encoders fail half-way. Each case is now a ``PayloadError`` naming the job, raised
before anything reaches a queue, the outbox or Inngest.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dramatiq
import psycopg
import pytest
from docjobs_devkit.inngest import InngestServer

from docjobs import errors, jobs
from docjobs.runtime import Runtime
from tests.conftest import provider_overrides

WEBHOOK = "internal.execute-webhook"  # its ``data`` is free-form JSON


def webhook_payload(data: Any) -> dict[str, Any]:
    return {"event": "DOCUMENT_SENT", "webhookId": "w", "data": data}


def deep(levels: int) -> Any:
    value: Any = "bottom"
    for _ in range(levels):
        value = [value]
    return value


REFUSED: dict[str, tuple[str, dict[str, Any], dict[str, Any], str]] = {
    # case: (job, payload, trigger options, what the error says)
    "NaN in a free-form field": (WEBHOOK, webhook_payload({"x": float("nan")}), {}, "nan is not a JSON number"),
    "Infinity in a list": (WEBHOOK, webhook_payload({"x": [1, float("inf")]}), {}, "inf is not a JSON number"),
    "NaN in a typed field": ("internal.seal-document", {"documentId": float("nan")}, {}, "documentId"),
    "NUL in a string": (WEBHOOK, webhook_payload({"x": "a\x00b"}), {}, "NUL"),
    "NUL in a key": (WEBHOOK, webhook_payload({"a\x00": 1}), {}, "NUL"),
    "nested 100 levels": (WEBHOOK, webhook_payload(deep(100)), {}, "nested deeper than 64 levels"),
    "nested 8000 levels": (WEBHOOK, webhook_payload(deep(8000)), {}, "nested deeper than 64 levels"),
    "over the size limit": (WEBHOOK, webhook_payload({"x": "y" * 70_000}), {}, "over the limit of 65536"),
    "NUL in the id": ("test.record", {"key": "k"}, {"id": "seal-73\x00a"}, "unprintable character"),
    "a newline in the id": ("test.record", {"key": "k"}, {"id": "seal-73\nforged"}, "unprintable character"),
    "an id of 256 characters": ("test.record", {"key": "k"}, {"id": "i" * 256}, "1 to 255 characters"),
    "an empty id": ("test.record", {"key": "k"}, {"id": ""}, "1 to 255 characters"),
    "a lone surrogate in the id": ("test.record", {"key": "k"}, {"id": "seal-\ud800"}, "unprintable"),
    "a lone surrogate in a big payload": (WEBHOOK, webhook_payload({"t": "\ud800" + "x" * 70_000}), {}, "surrogates"),
}  # fmt: skip


def _nothing_stored(runtime: Runtime, database_url: str, emulator: InngestServer | None) -> None:
    """No row, no outbox entry, no event; on bullmq the history (written at enqueue) shows none either."""
    if runtime.history is not None:
        runtime.history.flush()
    with psycopg.connect(database_url) as conn:
        assert (0, 0) == conn.execute(
            "SELECT (SELECT count(*) FROM background_job), (SELECT count(*) FROM job_outbox)"
        ).fetchone()
    if emulator is not None:
        assert [] == [event for event in emulator.events if not event["name"].startswith("inngest/")]


@pytest.fixture(params=["local", "bullmq", "inngest"])
def limited_runtime(
    request: pytest.FixtureRequest, make_runtime: Callable[..., Runtime]
) -> tuple[Runtime, InngestServer | None]:
    """A runtime on each provider, with a 64 KiB payload limit."""
    current = make_runtime(
        **provider_overrides(request, request.param), NEXT_PRIVATE_JOBS_MAX_PAYLOAD_BYTES="65536"
    )
    emulator = request.getfixturevalue("inngest_emulator") if request.param == "inngest" else None
    return current, emulator


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_what_cannot_be_carried_unchanged_is_refused_at_send(
    limited_runtime: tuple[Runtime, InngestServer | None], database_url: str, case: str
) -> None:
    current, emulator = limited_runtime
    job, payload, options, says = REFUSED[case]
    with pytest.raises(errors.PayloadError, match=says) as raised:
        jobs.trigger(job, payload, **options)
    assert str(raised.value).startswith(f"{job}: ")
    assert "\n" not in str(raised.value)
    _nothing_stored(current, database_url, emulator)


def test_a_bulk_send_with_one_bad_payload_sends_none(
    limited_runtime: tuple[Runtime, InngestServer | None], database_url: str
) -> None:
    current, emulator = limited_runtime
    payloads = [webhook_payload({"n": n}) for n in range(5)] + [webhook_payload({"x": float("nan")})]
    with pytest.raises(errors.PayloadError, match="nan is not a JSON number"):
        jobs.trigger_many(WEBHOOK, payloads)
    _nothing_stored(current, database_url, emulator)


def test_plain_dramatiq_actors_are_held_to_the_same_limits(
    limited_runtime: tuple[Runtime, InngestServer | None], database_url: str
) -> None:
    current, emulator = limited_runtime

    @dramatiq.actor(actor_name="test.plain_limits", broker=current.broker)
    def plain(value: Any) -> None:  # pragma: no cover - never runs
        pass

    for bad in (float("nan"), "a\x00b", deep(200), "z" * 70_000):
        with pytest.raises(errors.PayloadError, match="^test.plain_limits: "):
            plain.send(bad)
    _nothing_stored(current, database_url, emulator)


def test_a_payload_under_the_limits_goes_through_unchanged(
    limited_runtime: tuple[Runtime, InngestServer | None], database_url: str
) -> None:
    current, _ = limited_runtime
    data = {"nested": deep(60), "number": 1.5, "text": "ünïcødé \\u0000 written out", "big": "y" * 60_000}
    message = jobs.trigger(WEBHOOK, webhook_payload(data), id="seal-73")
    assert "seal-73" == message.message_id
    assert data == message.kwargs["data"]
