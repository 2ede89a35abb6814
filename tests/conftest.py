"""Fixtures: real PostgreSQL and Redis servers started by the test run, one database per test."""

from __future__ import annotations

import base64
import itertools
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import dramatiq
import psycopg
import pytest
from docjobs_devkit import FAST_SETTINGS, PostgresServer, RedisServer
from docjobs_devkit.http import serve
from docjobs_devkit.inngest import InngestServer
from docjobs_devkit.services import free_port
from docjobs_devkit.smtp import Mailbox, smtp_server

from docjobs import redaction, runtime
from docjobs.db.migrate import migrate
from docjobs.pdf.identity import write_development_certificate
from docjobs.runtime import Runtime
from docjobs.settings import Settings
from docjobs.web.app import create_app
from tests.support.actors import EVENTS_TABLE

REPO_ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_DATABASE = "docjobs_template"
TEST_SECONDARY_KEY = "test-secondary-key-0123456789"
_database_numbers = itertools.count(1)


TEST_KINDS = ("unit", "integration", "acceptance", "browser", "containers", "conformance")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test with its directory's kind, so that `-m unit` selects the fast ones."""
    tests_dir = Path(__file__).resolve().parent
    for item in items:
        kind = item.path.resolve().relative_to(tests_dir).parts[0]
        if kind in TEST_KINDS:
            item.add_marker(kind)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = PostgresServer(settings=FAST_SETTINGS).start()
    try:
        url = server.create_database(TEMPLATE_DATABASE)
        migrate(url)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(EVENTS_TABLE)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def signing_certificate(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A self-signed PKCS#12 certificate (no passphrase) that seals the tests' documents."""
    path = tmp_path_factory.mktemp("signing") / "certificate.p12"
    write_development_certificate(path)
    return path.read_bytes()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No test sees the developer's settings, nor the secrets an earlier test's settings held."""
    for name in list(os.environ):
        if name.startswith(("NEXT_PRIVATE_", "NEXT_PUBLIC_", "INNGEST_")) or name in ("NODE_ENV", "PORT"):
            monkeypatch.delenv(name)
    yield
    redaction.forget_all()


@pytest.fixture
def database_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh, migrated database for this test only."""
    name = f"test_{os.getpid()}_{next(_database_numbers)}"
    url = postgres_server.create_database(name, template=TEMPLATE_DATABASE)
    try:
        yield url
    finally:
        runtime.reset()
        postgres_server.drop_database(name)


@pytest.fixture
def environ(database_url: str, tmp_path: Path, signing_certificate: bytes) -> dict[str, str]:
    """Settings of a test: production mode, explicit secrets, fast retries and polls."""
    return {
        "NEXT_PRIVATE_DATABASE_URL": database_url,
        "NEXT_PRIVATE_ENCRYPTION_SECONDARY_KEY": TEST_SECONDARY_KEY,
        "NEXT_PRIVATE_SIGNING_LOCAL_FILE_CONTENTS": base64.b64encode(signing_certificate).decode(),
        # Nothing listens there: self-requests fail at once, as when the web app is down.
        "NEXT_PRIVATE_INTERNAL_WEBAPP_URL": "http://127.0.0.1:9",
        "NEXT_PRIVATE_JOBS_MIN_BACKOFF_SECONDS": "0.02",
        "NEXT_PRIVATE_JOBS_MAX_BACKOFF_SECONDS": "0.2",
        "NEXT_PRIVATE_JOBS_DATA_DIR": str(tmp_path / "data"),
        # Cron firings would add jobs to every test's queue; the scheduler's tests turn it on.
        "NEXT_PRIVATE_JOBS_EMBEDDED_SCHEDULER": "false",
    }


@pytest.fixture
def make_runtime(environ: dict[str, str]) -> Iterator[Callable[..., Runtime]]:
    """Configure the process runtime with the test's settings (plus overrides)."""

    def configure(**overrides: str) -> Runtime:
        import docjobs.actors  # noqa: F401 - declares docjobs' jobs
        import tests.support.actors  # noqa: F401 - declares the test actors

        return runtime.configure(Settings.from_environ({**environ, **overrides}))

    yield configure
    runtime.reset()


@pytest.fixture
def bullmq_environ(environ: dict[str, str], redis_server: RedisServer) -> dict[str, str]:
    """The test's settings on the bullmq provider, under a key prefix of its own."""
    return {
        **environ,
        "NEXT_PRIVATE_JOBS_PROVIDER": "bullmq",
        "NEXT_PRIVATE_REDIS_URL": redis_server.url,
        "NEXT_PRIVATE_REDIS_PREFIX": f"test{os.getpid()}x{next(_database_numbers)}",
    }


INNGEST_SIGNING_KEY = "signkey-test-" + "5e" * 32


@pytest.fixture
def inngest_emulator() -> Iterator[InngestServer]:
    """An Inngest server (devkit/docjobs_devkit/inngest.py) on a free port."""
    server = InngestServer(signing_key=INNGEST_SIGNING_KEY).start()
    try:
        yield server
    finally:
        server.stop()


def inngest_overrides(emulator: InngestServer, **more: str) -> dict[str, str]:
    """The settings of the inngest provider in production mode against ``emulator``."""
    return {
        "NEXT_PRIVATE_JOBS_PROVIDER": "inngest",
        "INNGEST_BASE_URL": emulator.url,
        "INNGEST_SIGNING_KEY": INNGEST_SIGNING_KEY,
        "INNGEST_EVENT_KEY": emulator.event_key,
        # Where the app registers itself (never the URL a sync came to): served by app_port.
        "INNGEST_SERVE_ORIGIN": f"http://127.0.0.1:{free_port()}",
        **more,
    }


def provider_overrides(request: pytest.FixtureRequest, provider: str) -> dict[str, str]:
    """The settings that put a test's runtime on ``provider`` (its own Redis prefix for bullmq)."""
    if provider == "local":
        return {}
    if provider == "inngest":
        return inngest_overrides(request.getfixturevalue("inngest_emulator"))
    bullmq_environ = request.getfixturevalue("bullmq_environ")
    names = ("NEXT_PRIVATE_JOBS_PROVIDER", "NEXT_PRIVATE_REDIS_URL", "NEXT_PRIVATE_REDIS_PREFIX")
    return {name: bullmq_environ[name] for name in names}


def app_port(current: Runtime) -> int | None:
    """The port to serve ``current``'s app on: the one its ``INNGEST_SERVE_ORIGIN`` names, else any."""
    origin = current.settings.inngest_serve_origin
    return urlsplit(origin).port if origin else None


@pytest.fixture
def pg_runtime(make_runtime: Callable[..., Runtime]) -> Runtime:
    return make_runtime()


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    """A real SMTP server on a free port, keeping what it receives."""
    with smtp_server() as box:
        yield box


@pytest.fixture(params=["local", "bullmq", "inngest"])
def service(
    request: pytest.FixtureRequest,
    make_runtime: Callable[..., Runtime],
    mailbox: Mailbox,
    start_worker: Callable[..., dramatiq.Worker],
) -> Iterator[Runtime]:
    """A signing service on each provider: mail to the test SMTP server, webhooks allowed on loopback, a worker."""
    provider = provider_overrides(request, request.param)
    current = make_runtime(
        **provider,
        NEXT_PRIVATE_SMTP_HOST="127.0.0.1",
        NEXT_PRIVATE_SMTP_PORT=str(mailbox.port),
        NEXT_PUBLIC_WEBAPP_URL="https://sign.example.com",
        NEXT_PRIVATE_WEBHOOK_SSRF_BYPASS_HOSTS="127.0.0.1",
        NEXT_PRIVATE_SMTP_FROM_NAME="Example Sign",
        NEXT_PRIVATE_SMTP_FROM_ADDRESS="sign@example.com",
    )
    if request.param != "inngest":
        start_worker(current.broker, threads=4)
        yield current
        return
    # Inngest runs the jobs: the app serves its functions and the emulator calls them.
    emulator = request.getfixturevalue("inngest_emulator")
    with serve(create_app(current), port=app_port(current)) as base:
        assert 200 == emulator.sync(f"{base}/api/jobs").status_code
        yield current


@pytest.fixture
def start_worker() -> Iterator[Callable[..., dramatiq.Worker]]:
    """Start in-process Dramatiq workers; all are stopped after the test."""
    workers: list[dramatiq.Worker] = []

    def start(broker: dramatiq.Broker, threads: int = 4) -> dramatiq.Worker:
        broker.emit_after("process_boot")
        worker = dramatiq.Worker(broker, worker_threads=threads, worker_timeout=50)
        worker.start()
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop(timeout=10_000)


def events(url: str, key: str | None = None) -> list[dict[str, Any]]:
    """The test actors' event rows, oldest first."""
    with psycopg.connect(url, row_factory=psycopg.rows.dict_row) as conn:
        if key is None:
            return conn.execute("SELECT * FROM test_event ORDER BY id").fetchall()
        return conn.execute("SELECT * FROM test_event WHERE key = %s ORDER BY id", (key,)).fetchall()


def inngest_call_body(job: str, data: dict[str, Any]) -> bytes:
    """The body of an Inngest call of ``job``'s function, first attempt, with ``data`` as its event's."""
    event = {"id": "evt-1", "name": job, "data": data, "ts": int(time.time() * 1000)}
    ctx = {"run_id": "run-1", "attempt": 0, "disable_immediate_execution": False, "use_api": False,
           "max_attempts": 5, "stack": {"stack": [], "current": 0}}  # fmt: skip
    return json.dumps({"event": event, "events": [event], "steps": {}, "ctx": ctx, "use_api": False}).encode()


def job_row(url: str, job_id: str) -> dict[str, Any]:
    with psycopg.connect(url, row_factory=psycopg.rows.dict_row) as conn:
        row = conn.execute("SELECT * FROM background_job WHERE id = %s", (job_id,)).fetchone()
    assert row is not None, f"no job {job_id}"
    return row


def wait_for(condition: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02) -> Any:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


# The board's fixture, for its tests and the fuzz tests (imported last: it uses the above).
from tests.support.board import open_board  # noqa: E402, F401
