"""Behaviour 13 (docjobs): a send inside the app's transaction happens only if it commits, even if the send is lost."""

from __future__ import annotations

import psycopg
import pytest

from docjobs import db, errors, jobs
from tests.support.providers import Calls, Harness, RuntimeHarness

pytestmark = pytest.mark.docjobs_only


def refused_on_the_stub(provider: Harness) -> bool:
    """On the stub (no database) a send with conn= is refused, naming why; elsewhere False."""
    if provider.name != "stub":
        return False
    with pytest.raises(errors.NotSupportedError, match="cannot send inside a database transaction"):
        jobs.trigger("conformance.saved", {"key": "in-a-transaction"}, conn=object())  # type: ignore[arg-type]
    return True


def declare(provider: Harness, calls: Calls) -> None:
    def saved(key: str) -> None:
        calls.add(key)

    provider.actor(saved)


def test_a_job_sent_in_a_committed_transaction_runs(provider: Harness) -> None:
    calls = Calls()
    declare(provider, calls)
    if refused_on_the_stub(provider):
        return
    provider.run()
    with db.transaction() as conn:
        jobs.trigger("conformance.saved", {"key": "committed"}, conn=conn)
    assert ["committed"] == calls.wait(1)
    provider.join()
    assert ["committed"] == calls.values()


def test_a_job_sent_in_a_rolled_back_transaction_is_never_sent(provider: Harness) -> None:
    calls = Calls()
    declare(provider, calls)
    if refused_on_the_stub(provider):
        return
    provider.run()
    with pytest.raises(RuntimeError, match="the change fails"), db.transaction() as conn:
        jobs.trigger("conformance.saved", {"key": "rolled-back"}, conn=conn)
        raise RuntimeError("the change fails")
    jobs.trigger("conformance.saved", {"key": "after"})
    provider.join()
    assert ["after"] == calls.values()


def test_a_job_whose_after_commit_send_was_lost_is_relayed(provider: Harness) -> None:
    assert isinstance(provider, RuntimeHarness)
    calls = Calls()
    declare(provider, calls)
    if refused_on_the_stub(provider):
        return
    provider.run()
    # A connection docjobs does not manage: its commit is invisible to docjobs, as is a
    # sender that crashed between its commit and the send.
    with psycopg.connect(provider.database_url) as conn:
        jobs.trigger("conformance.saved", {"key": "relayed"}, conn=conn)
    assert ["relayed"] == calls.wait(1)
    provider.join()
    assert ["relayed"] == calls.values()


def test_until_its_commit_a_sent_job_is_only_a_row_of_the_transaction(provider: Harness) -> None:
    assert isinstance(provider, RuntimeHarness)
    calls = Calls()
    declare(provider, calls)
    if refused_on_the_stub(provider):
        return
    provider.run()
    with db.transaction() as conn:
        sent = jobs.trigger("conformance.saved", {"key": "committed"}, conn=conn)
        # local writes the job row itself; elsewhere an outbox row, sent after the commit.
        table = "background_job" if provider.name == "local" else "job_outbox"
        assert {"count": 1} == conn.execute(f"SELECT count(*) FROM {table}").fetchone()  # noqa: S608 - a constant
        with psycopg.connect(provider.database_url) as other:
            seen = other.execute("SELECT 1 FROM background_job WHERE id = %s", (sent.message_id,)).fetchone()
            assert seen is None
            assert (0,) == other.execute("SELECT count(*) FROM job_outbox").fetchone()
        assert [] == calls.values()
    assert ["committed"] == calls.wait(1)
    provider.join()
    with psycopg.connect(provider.database_url) as conn:
        assert (0,) == conn.execute("SELECT count(*) FROM job_outbox").fetchone()  # sent, so taken out
