"""The provider seam: what each provider says it does, and how it refuses what it does not."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from dramatiq.middleware import Retries

from docjobs import errors, runtime, testing
from docjobs.brokers.base import Capabilities, JobRef
from docjobs.brokers.stub import StubBroker
from docjobs.db.board import JobFilter
from docjobs.settings import Settings

DATABASE = {"NEXT_PRIVATE_DATABASE_URL": "postgresql://u@h/db", "NEXT_PRIVATE_ENCRYPTION_SECONDARY_KEY": "k"}
ENVIRON = {
    "local": DATABASE,
    "bullmq": {**DATABASE, "NEXT_PRIVATE_JOBS_PROVIDER": "bullmq", "NEXT_PRIVATE_REDIS_URL": "redis://h"},
    "inngest": {**DATABASE, "NEXT_PRIVATE_JOBS_PROVIDER": "inngest", "NODE_ENV": "development"},
}
#: The plan's table (issue 19, §2): workers, scheduler, served, transactional send, pause,
#: cancel, run now, join, flush, retry in place, bulk by filter.
EXPECTED = {
    "local": Capabilities(True, True, False, True, True, True, True, True, True, True, True),
    "bullmq": Capabilities(True, True, False, True, True, True, True, True, True, False, False),
    "inngest": Capabilities(False, False, True, True, True, True, True, True, False, False, False),
}
JOB = JobRef(
    id="job-1",
    queue="default",
    actor="test.record",
    status="FAILED",
    run_at=datetime(2026, 1, 1, tzinfo=UTC),
    options={},
    payload={"key": "a"},
)


@pytest.mark.parametrize("provider", sorted(EXPECTED))
def test_each_provider_says_what_it_does_before_anything_is_built(provider: str) -> None:
    settings = Settings.from_environ(ENVIRON[provider])
    cls = runtime.provider_class(provider)
    assert provider == cls.name
    assert EXPECTED[provider] == cls.capabilities_for(settings)


def test_inngest_without_a_database_sends_but_cannot_join_pause_or_send_in_a_transaction(
    tmp_path: Path,
) -> None:
    settings = Settings.from_environ(
        {
            "NEXT_PRIVATE_JOBS_PROVIDER": "inngest",
            "NODE_ENV": "development",
            "NEXT_PRIVATE_JOBS_DATA_DIR": str(tmp_path),
        }
    )
    built = runtime.build(settings)
    try:
        capabilities = built.broker.capabilities
        assert capabilities == runtime.provider_class("inngest").capabilities_for(settings)
        assert (False, False, False) == (
            capabilities.join,
            capabilities.pause,
            capabilities.transactional_send,
        )
        assert capabilities.served and not capabilities.workers
        assert [] == built.broker.services()  # no outbox to relay
        with pytest.raises(errors.NotSupportedError, match="needs NEXT_PRIVATE_DATABASE_URL"):
            built.broker.join("default", timeout=10)
    finally:
        built.close()


def test_the_stub_runs_workers_and_refuses_what_needs_a_database() -> None:
    capabilities = StubBroker().capabilities
    assert capabilities.workers
    refused = ("scheduler", "served", "transactional_send", "pause", "cancel", "run_now", "retry_in_place")
    assert not any(getattr(capabilities, flag) for flag in refused)
    broker = StubBroker()
    assert [] == broker.routes() and [] == broker.services()  # the defaults mount and run nothing


@pytest.mark.parametrize(
    ("member", "call"),
    [
        ("set_paused", lambda broker: broker.set_paused("default", True)),
        ("cancel", lambda broker: broker.cancel(JOB)),
        ("delete", lambda broker: broker.delete(JOB)),
        ("run_now", lambda broker: broker.run_now(JOB)),
        ("retry", lambda broker: broker.retry(JOB, None)),
        ("bulk", lambda broker: broker.bulk("retry", JobFilter(), None)),
        ("sync_app", lambda broker: broker.sync_app("http://127.0.0.1:3000/api/jobs")),
    ],
)
def test_a_member_a_provider_lacks_raises_not_supported_naming_it(
    member: str, call: Callable[[StubBroker], Any]
) -> None:
    broker = StubBroker()
    with pytest.raises(errors.NotSupportedError, match=r"\bstub\b"):
        call(broker)


def test_a_provider_without_workers_has_no_worker_to_check() -> None:
    settings = Settings.from_environ(ENVIRON["inngest"])
    with pytest.raises(errors.NotSupportedError, match="inngest provider has no workers"):
        runtime.provider_class("inngest").worker_liveness(settings)


def test_an_unknown_provider_name_is_refused_in_one_line() -> None:
    with pytest.raises(
        errors.SettingsError, match="no provider is called 'redis'; there are local, bullmq, inngest, stub"
    ):
        runtime.provider_class("redis")


def test_stub_is_a_provider_name_needing_no_server_that_retries_as_dramatiq_does() -> None:
    dramatiq_retries = Retries().max_retries
    settings = Settings.from_environ({"NEXT_PRIVATE_JOBS_PROVIDER": "stub"})
    assert ("stub", dramatiq_retries) == (settings.provider, settings.retries)
    built = runtime.build(settings)
    try:
        assert isinstance(built.broker, StubBroker)
        assert (None, None) == (built.database, built.store)
    finally:
        built.close()
    with testing.stub_runtime() as stub:
        assert ("stub", dramatiq_retries) == (stub.settings.provider, stub.settings.retries)
    # The caller's settings keep the retries they give; the runtime still names its provider.
    with testing.stub_runtime(Settings.from_environ(ENVIRON["local"])) as stub:
        assert ("stub", 3) == (stub.settings.provider, stub.settings.retries)


def test_the_worker_threads_setting_is_the_one_the_provider_reads() -> None:
    bullmq = Settings.from_environ(ENVIRON["bullmq"]).with_concurrency(3)
    local = Settings.from_environ(ENVIRON["local"]).with_concurrency(5)
    assert (3, 3) == (bullmq.bullmq_concurrency, bullmq.worker_threads)
    assert (5, 5) == (local.concurrency, local.worker_threads)
    with pytest.raises(errors.SettingsError, match="NEXT_PRIVATE_BULLMQ_CONCURRENCY"):
        Settings.from_environ(ENVIRON["bullmq"]).with_concurrency(0)
