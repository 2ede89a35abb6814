"""A batch of sends is checked and written per batch, not per job (issue 21, local bulk enqueue).

Before, ``trigger_many`` ran ``MessageLimits`` once per job (each payload encoded a second
time just to be measured), and ``insert_many`` (ids given, or a delay) sent twelve arrays
that psycopg adapts element by element in Python. Now the limits check the batch in one
pass over the JSON the rows carry, and the rows go as one JSON document whose statement
sets its own durability.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import psycopg
import pytest

import docjobs
from docjobs import db, errors, jobs
from docjobs.brokers.middleware import MessageLimits
from docjobs.db import sql
from docjobs.runtime import Runtime
from tests.support.queries import watch_queries

WEBHOOK = "internal.execute-webhook"  # its ``data`` is free-form JSON
BATCH = 50


@docjobs.actor("test.bulk-notify", on_success="test.bulk-keywords")
def bulk_notify(*, key: str) -> None:
    """Names a callback that cannot take Dramatiq's positional (message_data, result)."""


@docjobs.actor("test.bulk-keywords")
def bulk_keywords(*, document_id: int = 0) -> None:
    """Keyword-only: no callback can be sent to it."""


def _webhook(data: Any) -> dict[str, Any]:
    return {"event": "DOCUMENT_SENT", "webhookId": "w", "data": data}


def _rows(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT count(*) FROM background_job").fetchone()
    return int(row[0]) if row else 0


@pytest.fixture
def limit_calls(pg_runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The hooks of the runtime's MessageLimits, as they are called."""
    (limits,) = [m for m in pg_runtime.broker.middleware if isinstance(m, MessageLimits)]
    calls: list[str] = []
    for hook in ("before_enqueue", "before_enqueue_many"):
        original = getattr(limits, hook, None)
        if original is None:
            continue

        def counting(*args: Any, _hook: str = hook, _original: Any = original, **kwargs: Any) -> Any:
            calls.append(_hook)
            return _original(*args, **kwargs)

        monkeypatch.setattr(limits, hook, counting)
    return calls


@pytest.mark.parametrize("ids", [False, True], ids=["new ids (COPY)", "ids given (insert_many)"])
def test_message_limits_check_a_batch_once(limit_calls: list[str], database_url: str, ids: bool) -> None:
    # Before: before_enqueue once per job, 50 calls.
    given = [f"once-{n}" for n in range(BATCH)] if ids else None
    jobs.trigger_many("test.record", [{"key": f"k{n}"} for n in range(BATCH)], ids=given)
    assert ["before_enqueue_many"] == limit_calls
    assert BATCH == _rows(database_url)


@pytest.mark.parametrize("ids", [False, True], ids=["new ids (COPY)", "ids given (insert_many)"])
def test_a_too_big_payload_in_a_batch_is_refused_in_one_line_and_nothing_is_written(
    make_runtime: Callable[..., Runtime], database_url: str, ids: bool
) -> None:
    make_runtime(NEXT_PRIVATE_JOBS_MAX_PAYLOAD_BYTES="65536")
    payloads = [_webhook({"n": n}) for n in range(BATCH)]
    payloads[7] = _webhook({"x": "y" * 70_000})
    given = [f"big-{n}" for n in range(BATCH)] if ids else None
    with pytest.raises(errors.PayloadError) as refused:
        jobs.trigger_many(WEBHOOK, payloads, ids=given)
    # Before: the same words without the index ("internal.execute-webhook: the payload is ...").
    reason = "the payload is 70101 bytes, over the limit of 65536 (NEXT_PRIVATE_JOBS_MAX_PAYLOAD_BYTES)"
    assert f"{WEBHOOK}: payload 7: {reason}" == str(refused.value)
    assert 0 == _rows(database_url)


def test_a_nan_in_a_batch_is_refused_naming_its_payload(pg_runtime: Runtime, database_url: str) -> None:
    payloads = [_webhook({"n": n}) for n in range(BATCH)]
    payloads[3] = _webhook({"x": [1, float("nan")]})
    with pytest.raises(
        errors.PayloadError, match=f"^{WEBHOOK}: payload 3: the payload cannot be sent: nan is not"
    ):
        jobs.trigger_many(WEBHOOK, payloads)
    assert 0 == _rows(database_url)


@pytest.fixture
def insert_many_params(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    """The parameters of every job_insert_many statement run, by name."""
    seen: list[dict[str, Any]] = []

    def insert_many(query: sql.Query, values: Mapping[str, Any]) -> None:
        if query.name == "job_insert_many":
            seen.append(dict(values))

    watch_queries(monkeypatch, insert_many)
    yield seen


def test_insert_many_sends_one_document_and_no_arrays(
    pg_runtime: Runtime, database_url: str, insert_many_params: list[dict[str, Any]]
) -> None:
    # Before: twelve list parameters (ids, queues, ..., delays_ms) adapted as arrays.
    jobs.trigger("test.record", {"key": "first"}, id="doc-a")
    jobs.trigger_many("test.record", [{"key": "a2"}, {"key": "b"}], ids=["doc-a", "doc-b"], delay=0.001)
    params = insert_many_params[-1]  # trigger(id=...) came this way too
    assert [] == [name for name, value in params.items() if isinstance(value, list | tuple)]
    assert isinstance(params["jobs"], str)
    assert "default" == params["synchronous_commit"]  # a standalone batch is durable by default
    with psycopg.connect(database_url) as conn:
        rows = dict(conn.execute("SELECT id, payload->>'key' FROM background_job").fetchall())
    assert {"doc-a": "first", "doc-b": "b"} == rows


def test_insert_many_in_a_transaction_keeps_its_durability(
    pg_runtime: Runtime, database_url: str, insert_many_params: list[dict[str, Any]]
) -> None:
    with db.transaction() as conn:
        conn.execute("SET LOCAL synchronous_commit TO off")
        jobs.trigger_many("test.record", [{"key": "x"}, {"key": "y"}], ids=["tx-x", "tx-y"], conn=conn)
        with conn.cursor(row_factory=psycopg.rows.tuple_row) as cursor:
            assert ("off",) == cursor.execute("SHOW synchronous_commit").fetchone()
    assert None is insert_many_params[0]["synchronous_commit"]
    assert 2 == _rows(database_url)


def test_an_asynchronous_setting_reaches_the_batch_statement(
    make_runtime: Callable[..., Runtime], database_url: str, insert_many_params: list[dict[str, Any]]
) -> None:
    make_runtime(NEXT_PRIVATE_JOBS_SYNCHRONOUS_COMMIT="false")
    jobs.trigger_many("test.record", [{"key": "x"}], ids=["async-x"])
    assert "off" == insert_many_params[0]["synchronous_commit"]
    assert 1 == _rows(database_url)


def test_a_batch_whose_job_names_a_callback_it_cannot_take_is_refused(
    pg_runtime: Runtime, database_url: str
) -> None:
    # The batch checks an actor's links once for all its option-less messages: still refused.
    with pytest.raises(
        errors.PayloadError, match=r"^test\.bulk-notify: on_success=test\.bulk-keywords cannot be"
    ):
        jobs.trigger_many("test.bulk-notify", [{"key": "a"}, {"key": "b"}])
    assert 0 == _rows(database_url)
