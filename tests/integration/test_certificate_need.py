"""In production only the processes that would seal need the signing certificate.

Run as users run them: ``docjobs`` subprocesses with ``NODE_ENV=production`` and no
certificate. Senders start; a process that would run ``internal.seal-document``
stops with one line and exit 2.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import dramatiq
import psycopg
import pytest
from docjobs_devkit.services import free_port

from docjobs import jobs
from docjobs.certificate_check import CertificateMissing
from docjobs.runtime import Runtime
from docjobs.web.app import create_app
from tests.conftest import provider_overrides, wait_for
from tests.support.processes import Processes, answers, cli_env, docjobs

MISSING = (
    "docjobs: error: NEXT_PRIVATE_SIGNING_LOCAL_FILE_PATH or NEXT_PRIVATE_SIGNING_LOCAL_FILE_CONTENTS "
    "is required in production: documents cannot be sealed without a signing certificate"
)


@pytest.fixture
def no_certificate(environ: dict[str, str]) -> dict[str, str]:
    """The test's settings in production, without a signing certificate."""
    return {**environ, "NODE_ENV": "production", "NEXT_PRIVATE_SIGNING_LOCAL_FILE_CONTENTS": ""}


@pytest.fixture
def processes() -> Iterator[Processes]:
    running = Processes()
    yield running
    running.stop_all()


# local builds its runtime as bullmq does (the scheduler's test runs it); inngest its own way.
@pytest.mark.parametrize("provider", ["bullmq", "inngest"])
def test_docjobs_trigger_sends_without_a_certificate(
    provider: str,
    request: pytest.FixtureRequest,
    no_certificate: dict[str, str],
    database_url: str,
    make_runtime: Callable[..., Runtime],
) -> None:
    overrides = provider_overrides(request, provider)
    env = cli_env(no_certificate, **overrides)
    result = docjobs(
        "trigger", "test.record", json.dumps({"key": "sent"}), "--id", "sent-1",
        "--actors", "tests.support.actors", env=env,
    )  # fmt: skip
    assert (0, "sent-1") == (result.returncode, result.stdout.strip()), result.stderr
    catch_up: Callable[[], object] = lambda: None  # noqa: E731
    if provider == "bullmq":
        # A sender's history events may wait in Redis' journal until any docjobs process moves them.
        journal = make_runtime(**overrides).broker.journal
        assert journal is not None
        catch_up = journal.drain
    assert "PENDING" == wait_for(lambda: (catch_up(), _status(database_url, "sent-1"))[1])


def test_the_scheduler_starts_without_a_certificate(no_certificate: dict[str, str]) -> None:
    result = docjobs("scheduler", "--list", env=cli_env(no_certificate))
    assert 0 == result.returncode, result.stderr
    assert "internal.cleanup-background-jobs" in result.stdout


def test_a_web_process_that_runs_no_jobs_starts_without_a_certificate(
    request: pytest.FixtureRequest, no_certificate: dict[str, str], processes: Processes, tmp_path: Path
) -> None:
    port = free_port()
    env = cli_env(no_certificate, **provider_overrides(request, "bullmq"), PORT=str(port))
    web = processes.start("web", "--no-worker", env=env, log=tmp_path / "web.log")
    wait_for(lambda: answers(f"http://127.0.0.1:{port}/healthz") or web.poll() is not None, timeout=30)
    assert web.poll() is None, (tmp_path / "web.log").read_text()


@pytest.mark.parametrize(
    ("provider", "command"),
    # local's worker and web (embedded worker): tests/acceptance/test_cli.py.
    [("bullmq", ["worker"]), ("inngest", ["web"])],  # Inngest calls its web process to run every job
)
def test_a_process_that_would_seal_refuses_to_start_without_a_certificate(
    provider: str, command: list[str], request: pytest.FixtureRequest, no_certificate: dict[str, str]
) -> None:
    env = cli_env(no_certificate, **provider_overrides(request, provider), PORT=str(free_port()))
    result = docjobs(*command, env=env)
    assert (2, [MISSING]) == (result.returncode, result.stderr.splitlines())


def test_app_code_sends_and_serves_without_a_certificate_but_a_sealing_worker_does_not_boot(
    make_runtime: Callable[..., Runtime], request: pytest.FixtureRequest
) -> None:
    current = make_runtime(
        **provider_overrides(request, "bullmq"),
        NODE_ENV="production",
        NEXT_PRIVATE_SIGNING_LOCAL_FILE_CONTENTS="",
    )
    message = jobs.trigger("test.record", {"key": "from-the-app"})
    assert message.message_id
    create_app(current, embedded_worker=False)  # the board and health, no jobs
    # A worker that leaves the sealing job's queue alone boots; one that would seal does not.
    other_queue = dramatiq.Worker(current.broker, queues={"some-other-queue"}, worker_threads=1)
    other_queue.start()
    other_queue.stop()
    with pytest.raises(CertificateMissing, match="is required in production"):
        dramatiq.Worker(current.broker, worker_threads=1).start()


def _status(database_url: str, job_id: str) -> str | None:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT status FROM background_job WHERE id = %s", (job_id,)).fetchone()
    return None if row is None else str(row[0])
