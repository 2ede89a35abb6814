"""Behaviour 14 (docjobs): a second jobs.trigger with the same id= is a no-op."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from docjobs import db, errors, jobs
from docjobs.runtime import Runtime
from tests.conftest import job_row
from tests.support.processes import cli_env, docjobs
from tests.support.providers import Calls, Harness

pytestmark = pytest.mark.docjobs_only


def test_a_second_trigger_with_the_same_id_sends_nothing(provider: Harness) -> None:
    calls = Calls()

    def once(key: str) -> None:
        calls.add(key)

    provider.actor(once)
    provider.run()
    first = jobs.trigger("conformance.once", {"key": "first"}, id="doc-73-seal")
    second = jobs.trigger("conformance.once", {"key": "second"}, id="doc-73-seal")
    provider.join()
    third = jobs.trigger("conformance.once", {"key": "after-it-ran"}, id="doc-73-seal")
    provider.join()
    assert "doc-73-seal" == first.message_id == second.message_id == third.message_id
    assert ["first"] == calls.values()


def test_a_send_of_a_taken_id_inside_a_transaction_sends_nothing(provider: Harness) -> None:
    calls = Calls()
    provider.actor(lambda key: calls.add(key), name="taken")
    provider.run()
    first = jobs.trigger("conformance.taken", {"key": "first"}, id="doc-74-seal")
    if provider.name == "stub":  # no database: a send inside a transaction is refused
        with pytest.raises(errors.NotSupportedError, match="cannot send inside a database transaction"):
            jobs.trigger("conformance.taken", {"key": "again"}, id="doc-74-seal", conn=object())  # type: ignore[arg-type]
    else:
        with db.transaction() as conn:
            again = jobs.trigger(
                "conformance.taken", {"key": "in-a-transaction"}, id="doc-74-seal", conn=conn
            )
        assert first.message_id == again.message_id
    provider.join()
    assert "doc-74-seal" == first.message_id
    assert ["first"] == calls.values()


def test_on_local_a_send_of_a_taken_id_from_another_process_sends_nothing(
    make_runtime: Callable[..., Runtime], environ: dict[str, str], database_url: str
) -> None:
    make_runtime()
    jobs.trigger("test.record", {"key": "first"}, id="seal-73")
    # From another process, as an operator does: it says nothing was enqueued, and exits 0.
    result = docjobs(
        "trigger", "test.record", json.dumps({"key": "from-the-cli"}), "--id", "seal-73",
        "--actors", "tests.support.actors", env=cli_env(environ),
    )  # fmt: skip
    assert (0, "") == (result.returncode, result.stdout.strip()), result.stderr
    assert "docjobs: nothing enqueued: a job with id 'seal-73' exists" in result.stderr
    row = job_row(database_url, "seal-73")  # the table is the queue: one job, the first
    assert ("PENDING", "first") == (row["status"], row["payload"]["key"])
