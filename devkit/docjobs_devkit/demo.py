"""``docjobs demo``: PostgreSQL, the web app with its worker, a signing flow from invitation to completion.

What it lacks it starts: an embedded PostgreSQL (data under
``$NEXT_PRIVATE_JOBS_DATA_DIR/pgdata``, ``.docjobs/pgdata`` by default) when
``NEXT_PRIVATE_DATABASE_URL`` is unset, a throwaway ``redis-server`` on the
bullmq provider when ``NEXT_PRIVATE_REDIS_URL`` is unset, the Inngest emulator
(``docjobs_devkit.inngest``) on the inngest provider when ``INNGEST_BASE_URL`` is
unset, a mail catcher when ``NEXT_PRIVATE_SMTP_HOST`` is unset, and always a
webhook receiver. It runs in development, serves on 127.0.0.1:``PORT`` (3000;
loopback, as the board is open to all in development, with ``/`` leading to it),
runs a few jobs the ways app code sends them, then a whole signing flow: a
document sent to two signers and a CC, both sign, the document is sealed,
completion emails go out, and every step's webhook is delivered. It prints this
run's jobs, emails and webhooks as they happen, or with ``--once`` only a summary
of this run (the database is kept between runs, and the board shows them all).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import psycopg
import uvicorn

from docjobs import db, errors, jobs, runtime
from docjobs import logging as docjobs_logging
from docjobs.db.migrate import create_database, migrate
from docjobs.defaults import DEFAULT_DATA_DIR, DEFAULT_PORT
from docjobs.pdf.verify import Verification, verify
from docjobs.settings import Settings
from docjobs.web.app import create_app
from docjobs.web.board.routes import BOARD_PATH
from docjobs_devkit.demo_postgres import EmbeddedPostgres
from docjobs_devkit.demo_report import Reporter
from docjobs_devkit.demo_signals import StopRequested, StopSignals

logger = logging.getLogger(__name__)

DEMO_DATABASE = "docjobs"
#: Where the demo listens, and the host of every URL it prints.
DEMO_HOST = "127.0.0.1"
#: The demo gives up on a step after this long.
STEP_TIMEOUT_SECONDS = 60.0
#: How long stopping waits for the web app; its worker waits up to 30 s for running jobs.
WEB_STOP_TIMEOUT_SECONDS = 40.0


def run_demo(*, once: bool) -> int:
    """Run the demo; with ``once``, exit when it is done.

    Whatever happens (done, an error, SIGINT, SIGTERM or SIGHUP), what it started
    is stopped in order: the web app and its worker, then the connections, then the
    servers.

    Returns:
        0 when every job of this run and the document completed (with ``once``), or
        when stopped after that; 1 when something failed; 128 + the signal's number
        when a signal stopped it before it was done.
    """
    with StopSignals() as signals:
        try:
            return _run(once=once, signals=signals)
        except StopRequested as stop:
            _say(f"demo: stopped by {stop.name} before it was done; what it started is stopped")
            return 128 + stop.signum


def _run(*, once: bool, signals: StopSignals) -> int:
    environ = dict(os.environ, NODE_ENV="development")
    if once:
        # A handful of lines, not the log; a level you set still wins.
        environ.setdefault("NEXT_PRIVATE_JOBS_LOG_LEVEL", "WARNING")
    # Entered after the ExitStack, so left before it: the stopping runs to its end.
    with ExitStack() as stack, signals.held_on_exit():
        embedded: EmbeddedPostgres | None = None
        if not environ.get("NEXT_PRIVATE_DATABASE_URL"):
            data_dir = Path(environ.get("NEXT_PRIVATE_JOBS_DATA_DIR") or DEFAULT_DATA_DIR)
            embedded = EmbeddedPostgres(data_dir / "pgdata")
            stack.callback(embedded.stop)
            try:
                create_database(embedded.start(), DEMO_DATABASE)
            except errors.ServiceError as exc:
                _say(f"demo: {exc}")
                return 1
            environ["NEXT_PRIVATE_DATABASE_URL"] = embedded.url(DEMO_DATABASE)
        redis_started = False
        if environ.get("NEXT_PRIVATE_JOBS_PROVIDER") == "bullmq" and not environ.get(
            "NEXT_PRIVATE_REDIS_URL"
        ):
            from docjobs_devkit import RedisServer

            redis_started = True
            redis_server = RedisServer().start()
            stack.callback(redis_server.stop)
            environ["NEXT_PRIVATE_REDIS_URL"] = redis_server.url
        on_inngest = environ.get("NEXT_PRIVATE_JOBS_PROVIDER") == "inngest"
        emulator_started = False
        if on_inngest and not environ.get("INNGEST_BASE_URL"):
            from docjobs_devkit.inngest import InngestServer

            emulator_started = True
            emulator = InngestServer(signing_key=None).start()  # dev mode, as the demo runs
            stack.callback(emulator.stop)
            environ.update(INNGEST_BASE_URL=emulator.url, INNGEST_EVENT_KEY=emulator.event_key)
        mailbox = None
        if not environ.get("NEXT_PRIVATE_SMTP_HOST"):
            from docjobs_devkit.smtp import smtp_server

            mailbox = stack.enter_context(smtp_server())
            environ.update(NEXT_PRIVATE_SMTP_HOST="127.0.0.1", NEXT_PRIVATE_SMTP_PORT=str(mailbox.port))
        from docjobs_devkit.http import Receiver

        receiver = stack.enter_context(Receiver(status=200).running())
        environ.setdefault("NEXT_PRIVATE_WEBHOOK_SSRF_BYPASS_HOSTS", "127.0.0.1")
        app_url = f"http://{DEMO_HOST}:{environ.get('PORT') or DEFAULT_PORT}"
        environ.setdefault("NEXT_PRIVATE_INTERNAL_WEBAPP_URL", app_url)
        settings = Settings.from_environ(environ)
        docjobs_logging.configure(settings.log_level)
        assert settings.database_url is not None
        migrate(settings.database_url)
        current = runtime.configure(settings)
        stack.callback(runtime.reset)
        import docjobs.actors  # noqa: F401 - declares the job types
        import docjobs_devkit.demo_actors  # noqa: F401 - declares the demo jobs

        reporter = Reporter(mailbox, receiver, stream=not once)
        reporter.remember_earlier_jobs()  # before the worker and the scheduler start
        # Loopback only: in development the board is open to anyone who reaches it.
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(current), host=DEMO_HOST, port=settings.port, log_config=None, access_log=False
            )
        )
        web_stopped = _serve_in_thread(server)
        stack.callback(_stop_web, server, web_stopped)
        if not _wait_until(lambda: server.started or web_stopped.is_set(), 15.0) or not server.started:
            _say(f"demo: the web app could not start on {DEMO_HOST}:{settings.port}")
            return 1
        runs_jobs = "web app with embedded worker"
        if on_inngest:
            from docjobs.defaults import INNGEST_SERVE_PATH

            try:
                registered = current.broker.sync_app(f"{app_url}{INNGEST_SERVE_PATH}")
            except errors.DocjobsError as exc:
                _say(f"demo: {exc}")
                return 1
            where = "the Inngest emulator" if emulator_started else settings.inngest_base_url
            runs_jobs = f"web app, {len(registered)} functions synced with {where},"
        print(
            f"demo: {runs_jobs} on {app_url} ({settings.provider} provider); board: {app_url}{BOARD_PATH}",
            flush=True,
        )
        reporter.start()
        stack.callback(reporter.stop)
        started = time.monotonic()
        try:
            enqueue_demo_jobs(environ)
            document = signing_flow(receiver.url)
        except (errors.DocjobsError, psycopg.Error) as exc:
            _say(f"demo: failed: {exc}")
            return 1
        reporter.stop()
        sealed_path, verification = save_sealed_pdf(document, Path(settings.data_dir))
        print(
            f"demo: sealed PDF written to {sealed_path}; signature "
            f"{'intact, valid and covering the whole file' if verification.ok else 'NOT valid'} "
            f"(signed by {verification.signer})",
            flush=True,
        )
        summary = reporter.summary()
        ok = summary.all_completed and document["status"] == "COMPLETED" and verification.ok
        print(
            f"demo: {summary.jobs_clause()}; {summary.emails} emails, {summary.webhooks} webhooks; "
            f"document {document['title']!r} {document['status']} in {time.monotonic() - started:.1f} s",
            flush=True,
        )
        if once:
            return 0 if ok else 1
        command = _another_shell(
            environ,
            settings,
            app_url,
            embedded=embedded is not None,
            redis=redis_started,
            emulator=emulator_started,
        )
        print(f"demo: still serving; try in another shell:\n  {command}\nCtrl-C stops.", flush=True)
        try:
            while not web_stopped.wait(1.0):  # an Event's wait is safe to interrupt (see _serve_in_thread)
                pass
        except StopRequested:
            return 0  # asked to stop once done, as the hint says
        _say("demo: the web app stopped on its own")
        return 1
    return 0  # not reached: ExitStack does not swallow


def _another_shell(
    environ: dict[str, str], settings: Settings, app_url: str, *, embedded: bool, redis: bool, emulator: bool
) -> str:
    """A ``docjobs trigger`` command line that reaches this demo from another shell.

    The other process sends to this demo's database (or queue) and wakes this demo
    with a self-request to NEXT_PRIVATE_INTERNAL_WEBAPP_URL, this demo's address (PORT
    is read by the web app only, so the URL carries the port), signed with the
    development key kept in this demo's data directory.
    """
    # The embedded server's URL holds no password; a URL you gave might.
    values = {
        "NODE_ENV": "development",
        "NEXT_PRIVATE_DATABASE_URL": settings.database_url
        if embedded
        else "<your NEXT_PRIVATE_DATABASE_URL>",
        "NEXT_PRIVATE_INTERNAL_WEBAPP_URL": app_url,
    }
    if environ.get("NEXT_PRIVATE_JOBS_DATA_DIR"):  # else .docjobs, as for this demo in this directory
        values["NEXT_PRIVATE_JOBS_DATA_DIR"] = environ["NEXT_PRIVATE_JOBS_DATA_DIR"]
    if settings.provider == "bullmq":
        redis_url = environ["NEXT_PRIVATE_REDIS_URL"] if redis else "<your NEXT_PRIVATE_REDIS_URL>"
        values.update(NEXT_PRIVATE_JOBS_PROVIDER="bullmq", NEXT_PRIVATE_REDIS_URL=redis_url)
    elif settings.provider == "inngest":
        # The emulator's event key is a fixed test value; a key you gave stays yours.
        event_key = environ["INNGEST_EVENT_KEY"] if emulator else "<your INNGEST_EVENT_KEY>"
        values.update(
            NEXT_PRIVATE_JOBS_PROVIDER="inngest",
            INNGEST_BASE_URL=environ["INNGEST_BASE_URL"],
            INNGEST_EVENT_KEY=event_key,
        )
    assignments = " ".join(f"{name}={shlex.quote(str(value))}" for name, value in values.items())
    payload = shlex.quote('{"name": "you"}')
    return f"{assignments} .venv/bin/docjobs trigger demo.greet {payload} --actors docjobs_devkit.demo_actors"


def _stop_web(server: uvicorn.Server, web_stopped: threading.Event) -> None:
    """Stop the web app, and with it the worker (which removes its worker row), before
    the connections close and the servers stop: the order of the ExitStack."""
    server.should_exit = True
    if not web_stopped.wait(WEB_STOP_TIMEOUT_SECONDS):
        _say(f"demo: the web app did not stop in {WEB_STOP_TIMEOUT_SECONDS:.0f} s; stopping the rest anyway")


def _serve_in_thread(server: uvicorn.Server) -> threading.Event:
    """Run the server in a thread; the event is set when it has stopped.

    An event, not ``Thread.join``: on CPython 3.11 and 3.12 a join interrupted by a
    signal's exception marks the thread stopped while it still runs, and a later
    join returns at once (the connections were then closed under the worker).
    """
    web_stopped = threading.Event()

    def serve() -> None:
        try:
            server.run()
        finally:
            web_stopped.set()

    threading.Thread(target=serve, name="docjobs-demo-web", daemon=True).start()
    return web_stopped


def _say(line: str) -> None:
    """One line on stderr; a terminal that hung up (SIGHUP) is not an error of ours."""
    with contextlib.suppress(OSError):
        print(line, file=sys.stderr, flush=True)


def enqueue_demo_jobs(environ: dict[str, str]) -> None:
    """A few jobs sent the ways app code sends them."""
    from docjobs_devkit.demo_actors import flaky, greet, steps

    greet.send(name="Ada")
    with db.transaction() as conn:  # the job commits with the rest of the transaction
        jobs.trigger("demo.greet", {"name": "Grace", "greeting": "Welcome"}, conn=conn)
    flaky.send(failures=1)
    jobs.trigger("demo.greet", {"name": "Linus", "greeting": "Later"}, delay=1.0)
    steps.send(document_id=7)
    # From another process, which wakes this one with a signed self-request.
    try:
        result = subprocess.run(
            [sys.executable, "-m", "docjobs", "trigger", "demo.greet", '{"name": "another process"}',
             "--actors", "docjobs_devkit.demo_actors"],
            env=environ, capture_output=True, text=True, check=False, timeout=STEP_TIMEOUT_SECONDS,
        )  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        raise errors.DocjobsError(f"docjobs trigger did not finish in {STEP_TIMEOUT_SECONDS:.0f} s") from exc
    if result.returncode != 0:
        raise errors.DocjobsError(f"docjobs trigger failed: {result.stderr.strip()}")


def signing_flow(webhook_url: str) -> dict[str, Any]:
    """Send a document to two signers and a CC, sign it, and return it once it is sealed."""
    from docjobs.domain import FieldSpec, Flows, Metadata, RecipientSpec
    from docjobs.webhooks.events import WebhookEvent
    from docjobs_devkit.pdfs import sample_pdf

    flows = Flows()
    current = runtime.current()
    suffix = str(int(time.time()))  # a fresh owner per run: the demo's database is kept
    owner = flows.create_user(f"olivia.{suffix}@example.com", "Olivia Owner")
    flows.add_webhook(owner["id"], webhook_url, list(WebhookEvent), secret="demo-webhook-secret")
    document = flows.create_document(
        owner["id"], "Lease agreement", sample_pdf(3, title="Lease agreement"),
        [RecipientSpec("alice@example.com", "Alice"), RecipientSpec("bob@example.com", "Bob"),
         RecipientSpec("carol@example.com", "Carol", role="CC")],
        [FieldSpec(recipient=0, type="SIGNATURE", page=3, position_x=10, position_y=75, width=30, height=6),
         FieldSpec(recipient=1, type="SIGNATURE", page=3, position_x=55, position_y=75, width=30, height=6)],
        message="Please sign the lease.",
    )  # fmt: skip
    metadata = Metadata(ip_address="203.0.113.7", user_agent="docjobs-demo")
    flows.send_document(document["id"], metadata)
    current.join(timeout_seconds=STEP_TIMEOUT_SECONDS)
    recipients = {r["name"]: r for r in flows.recipients(document["id"])}
    fields = _fields_by_recipient(flows, document["id"])
    for name in ("Alice", "Bob"):
        token = recipients[name]["token"]
        flows.open_document(token, metadata)
        flows.sign(token, {fields[recipients[name]["id"]]: name}, metadata)
        current.join(timeout_seconds=STEP_TIMEOUT_SECONDS)
    return flows.document(document["id"])


def save_sealed_pdf(document: dict[str, Any], data_dir: Path) -> tuple[Path, Verification]:
    """Write the document's sealed PDF under ``<data dir>/sealed/`` and check its signature."""
    current = runtime.current()
    with current.require_database().connection() as conn:
        data = current.domain.document_data(conn, int(document["current_data_id"]))
    assert data is not None  # a foreign key
    path = data_dir / "sealed" / f"{document['title']}.pdf"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(data["data"]))
    return path, verify(bytes(data["data"]), [current.signing_identity().certificate])


def _fields_by_recipient(flows: Any, document_id: int) -> dict[int, int]:
    with runtime.current().require_database().connection() as conn:
        return {field["recipient_id"]: field["id"] for field in flows.store.fields(conn, document_id)}


def _wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()
