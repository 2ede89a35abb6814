"""Dramatiq's conventions (issue 18, item 3): plain actors land on docjobs' broker, app schedules fire once.

A Dramatiq user writes ``import docjobs`` then ``@dramatiq.actor``; a periodiq user
writes ``periodic=cron(...)``. Both must reach docjobs' broker and cron ledger, and
an actor bound elsewhere must be refused by name, never lost.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dramatiq
import dramatiq.broker
import httpx
import pendulum
import psycopg
import pytest
from docjobs_devkit.http import serve
from dramatiq.brokers.stub import StubBroker
from periodiq import cron

import docjobs
from docjobs import errors, registry
from docjobs.runtime import Runtime
from docjobs.scheduler import listing
from docjobs.scheduler.firing import SLOT_OPTION, Firer
from docjobs.scheduler.inprocess import InProcessScheduler
from docjobs.scheduler.periodiq import PeriodiqSpec
from docjobs.web.app import create_app
from tests.conftest import events, wait_for
from tests.support import actors as test_actors
from tests.support.board import BOARD, TOKEN
from tests.support.processes import cli_env
from tests.support.processes import docjobs as docjobs_command

EVERY_MINUTE = "* * * * *"


def rows(url: str, query: str, *params: Any) -> list[dict[str, Any]]:
    with psycopg.connect(url, autocommit=True, row_factory=psycopg.rows.dict_row) as conn:
        cursor = conn.execute(query.encode(), params)
        return cursor.fetchall() if cursor.description else []


def python(script: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``script`` in a fresh interpreter, as a user's process starts."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        env={**env, "PYTHONPATH": f"{cwd}{os.pathsep}{env['PYTHONPATH']}"},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def global_broker() -> Iterator[None]:
    """Put Dramatiq's global broker back as it was (a test sets a foreign one)."""
    before = dramatiq.broker.global_broker
    yield
    if before is not None:
        dramatiq.set_broker(before)


@pytest.fixture
def app_schedules() -> Iterator[list[str]]:
    """Job ids whose app schedules (and plain actors) the test declares; all forgotten after it."""
    declared: list[str] = []
    yield declared
    for job_id in declared:
        docjobs.remove_schedule(job_id)
        if job_id not in registry.declared():  # docjobs' own test actors stay
            registry.forget(job_id)


# 1. Plain Dramatiq actors land on docjobs' broker.


@pytest.mark.parametrize("statement", ["import docjobs", "import docjobs.runtime"])
def test_a_plain_actor_declared_after_importing_docjobs_is_on_docjobs_broker(
    statement: str, environ: dict[str, str], database_url: str, tmp_path: Path
) -> None:
    script = f"""
        import os
        import socket
        connected = []
        real_connect = socket.socket.connect
        socket.socket.connect = lambda self, address: (connected.append(address), real_connect(self, address))[1]
        settings = {{name: os.environ.pop(name) for name in list(os.environ) if name.startswith("NEXT_")}}

        {statement}
        import dramatiq

        @dramatiq.actor(actor_name="app.hello")
        def hello(name):
            pass

        # Importing and declaring read no settings (there were none) and opened nothing.
        print(type(dramatiq.get_broker()).__name__, len(connected))
        os.environ.update(settings)

        from docjobs import jobs
        jobs.trigger("app.hello", {{"name": "ada"}})
        hello.send(name="bob")
    """
    ran = python(script, cli_env(environ), tmp_path)
    assert 0 == ran.returncode, ran.stderr
    assert "RuntimeBroker 0" == ran.stdout.strip()
    sent = rows(database_url, "SELECT payload->>'name' AS name FROM background_job WHERE actor = 'app.hello'")
    assert ["ada", "bob"] == sorted(row["name"] for row in sent)


def test_the_dramatiq_command_runs_a_module_of_plain_actors_that_imports_docjobs(
    make_runtime: Callable[..., Runtime], environ: dict[str, str], database_url: str, tmp_path: Path
) -> None:
    (tmp_path / "app_plain.py").write_text(
        textwrap.dedent("""
            import docjobs
            import dramatiq

            @dramatiq.actor(actor_name="app.plain")
            def plain(key):
                print("ran", key, flush=True)
        """)
    )
    current = make_runtime()
    message = current.broker.enqueue(
        dramatiq.Message(
            queue_name="default", actor_name="app.plain", args=(), kwargs={"key": "k1"}, options={}
        )
    )
    env = cli_env(environ, PYTHONPATH=f"{tmp_path}{os.pathsep}{cli_env(environ)['PYTHONPATH']}")
    # As Dramatiq's documentation has it: the module, no ":broker"; Dramatiq takes its global broker.
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dramatiq",
            "docjobs.runtime",
            "app_plain",
            "--processes",
            "1",
            "--threads",
            "1",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        query = "SELECT status FROM background_job WHERE id = %s"
        wait_for(
            lambda: rows(database_url, query, message.message_id)[0]["status"] == "COMPLETED", timeout=30
        )
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(20)


def test_actors_on_another_broker_are_refused_by_name(
    environ: dict[str, str], database_url: str, tmp_path: Path
) -> None:
    (tmp_path / "app_elsewhere.py").write_text(
        textwrap.dedent("""
            import dramatiq
            from dramatiq.brokers.stub import StubBroker

            # Before docjobs is imported: Dramatiq's global broker is someone else's.
            dramatiq.set_broker(StubBroker())

            @dramatiq.actor(actor_name="app.before")
            def before():
                pass

            import docjobs

            other = StubBroker()

            @dramatiq.actor(actor_name="app.explicit", broker=other)
            def explicit():
                pass

            # After: the app sets its own broker again.
            dramatiq.set_broker(StubBroker())

            @dramatiq.actor(actor_name="app.after")
            def after():
                pass
        """)
    )
    script = """
        import json
        import app_elsewhere
        from docjobs import jobs
        outcomes = {}
        for name in ("app.before", "app.explicit", "app.after"):
            try:
                jobs.trigger(name, {})
                outcomes[name] = "sent"
            except Exception as exc:
                outcomes[name] = f"{type(exc).__name__}: {exc}"
        print(json.dumps(outcomes))
    """
    ran = python(script, cli_env(environ), tmp_path)
    assert 0 == ran.returncode, ran.stderr
    outcomes = json.loads(ran.stdout)
    for name in ("app.before", "app.explicit", "app.after"):
        assert outcomes[name].startswith(f"ForeignActor: {name} is declared on a StubBroker, not on docjobs'")
    assert [] == rows(database_url, "SELECT id FROM background_job")


def test_a_worker_refuses_to_start_beside_an_actor_on_another_broker(
    make_runtime: Callable[..., Runtime],
    start_worker: Callable[..., dramatiq.Worker],
    global_broker: None,
) -> None:
    current = make_runtime()
    dramatiq.set_broker(StubBroker())

    @dramatiq.actor(actor_name="app.stray")
    def stray() -> None:
        pass

    with pytest.raises(errors.ActorNotFound, match=r"refusing to start: .*app\.stray \(a StubBroker\)"):
        start_worker(current.broker)


def test_mistakes_in_a_module_of_actors_are_refused_in_one_line_by_every_command(
    environ: dict[str, str], tmp_path: Path
) -> None:
    modules = {
        "app_clash": """
            import dramatiq
            import docjobs

            @dramatiq.actor(actor_name="internal.seal-document")
            def mine():
                pass
        """,
        "app_stray": """
            import dramatiq
            from dramatiq.brokers.stub import StubBroker
            import docjobs

            @dramatiq.actor(actor_name="app.stray", broker=StubBroker())
            def stray():
                pass
        """,
        "app_bad_periodic": """
            import dramatiq
            import docjobs

            @dramatiq.actor(actor_name="app.every", periodic="every 5 minutes")
            def every():
                pass
        """,
    }
    for name, source in modules.items():
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
    cases = {
        ("trigger", "app.mine", "{}", "--actors", "app_clash"): (
            "cannot load actor module 'app_clash': ValueError: An actor named 'internal.seal-document'"
        ),
        ("scheduler", "--list", "app_bad_periodic"): "cannot load actor module 'app_bad_periodic': Schedule",
    }
    # The console script, from the directory holding the modules (found there, as `dramatiq` finds them).
    command = str(Path(sys.executable).parent / "docjobs")
    for arguments, expected in cases.items():
        ran = subprocess.run(
            [command, *arguments],
            env=cli_env(environ),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        lines = ran.stderr.strip().splitlines()
        assert (2, 1) == (ran.returncode, len(lines)), ran.stderr
        assert expected in lines[0]
    # The worker processes import the app's modules (as the dramatiq command's do), and refuse at boot.
    worker = subprocess.run(
        [command, "worker", "app_stray", "--processes", "1", "--threads", "1"],
        env=cli_env(environ), cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert 0 != worker.returncode
    refusal = "refusing to start: actors declared on another broker than docjobs': app.stray (a StubBroker)"
    assert refusal in worker.stderr
    # In a plain Python process, a bad periodic= is refused where it is declared.
    ran = python("import app_bad_periodic", cli_env(environ), tmp_path)
    assert "not a cron expression" in ran.stderr.strip().splitlines()[-1]
    assert 'periodic="every 5 minutes"' in ran.stderr


# 2. App schedules: periodiq's periodic= and docjobs.add_schedule, once per slot.


def test_a_periodiq_actor_keeps_its_schedule_and_each_slot_runs_once(
    make_runtime: Callable[..., Runtime],
    database_url: str,
    start_worker: Callable[..., dramatiq.Worker],
    app_schedules: list[str],
) -> None:
    current = make_runtime()
    app_schedules.append("app.tick")

    @dramatiq.actor(actor_name="app.tick", periodic=cron(EVERY_MINUTE))
    def tick() -> None:
        test_actors.record("tick", "ran")

    assert isinstance(tick.options.get("periodic"), PeriodiqSpec)
    assert EVERY_MINUTE == current.cron["app.tick"].expression
    now = datetime.now(UTC)
    slot = current.cron["app.tick"].due_slot(now)
    assert slot is not None
    # Two in-process schedulers and a periodiq process fire the same slot.
    assert current.ledger is not None
    for name in ("first", "second"):
        InProcessScheduler(current.cron, Firer(current.broker, current.ledger, fired_by=name)).tick(now)
    tick.send_with_options(**{SLOT_OPTION: str(pendulum.instance(slot + timedelta(seconds=0.5)))})
    start_worker(current.broker)
    (firing,) = wait_for(
        lambda: [row for row in cron_rows(database_url, "app.tick") if row["status"] == "succeeded"],
        timeout=15,
    )
    wait_for(lambda: all(job["status"] == "COMPLETED" for job in firings(database_url, "app.tick")))
    assert ("app.tick", slot) == (firing["schedule"], firing["slot"])
    assert 2 == len(firings(database_url, "app.tick"))  # one claimed by a scheduler, one sent by periodiq
    assert ["ran"] == [event["kind"] for event in events(database_url, "tick")]


def test_an_app_schedule_with_a_payload_fires_once_per_slot_and_is_listed(
    make_runtime: Callable[..., Runtime],
    database_url: str,
    start_worker: Callable[..., dramatiq.Worker],
    app_schedules: list[str],
) -> None:
    current = make_runtime(NEXT_PRIVATE_JOBS_BOARD_TOKEN=TOKEN)
    app_schedules.append("test.record")
    docjobs.add_schedule("test.record", EVERY_MINUTE, payload={"key": "scheduled", "documentId": 7})
    now = datetime.now(UTC)
    assert current.ledger is not None
    for name in ("first", "second"):
        InProcessScheduler(current.cron, Firer(current.broker, current.ledger, fired_by=name)).tick(now)
    assert ["first"] == [
        row["fired_by"] for row in cron_rows(database_url, "test.record")
    ]  # one claim per slot
    # periodiq's firing carries no payload: the schedule's is filled in.
    test_actors.record_job.send_with_options(**{SLOT_OPTION: str(pendulum.instance(now))})
    start_worker(current.broker)
    wait_for(
        lambda: [row for row in cron_rows(database_url, "test.record") if row["status"] == "succeeded"],
        timeout=15,
    )
    wait_for(lambda: all(job["status"] == "COMPLETED" for job in firings(database_url, "test.record")))
    payloads = [job["payload"] for job in firings(database_url, "test.record")]
    assert [{"key": "scheduled", "documentId": 7}] * 2 == payloads
    assert 1 == len(events(database_url, "scheduled"))

    (state,) = [
        row for row in listing.states(current.cron, current.ledger, now) if row.job_id == "test.record"
    ]
    assert (EVERY_MINUTE, "succeeded", None) == (state.expression, state.last_status, state.variable)

    with serve(create_app(current, embedded_worker=False)) as url:
        overview = httpx.get(f"{url}{BOARD}/api/overview", headers={"authorization": f"Bearer {TOKEN}"})
    (shown,) = [row for row in overview.json()["schedules"] if row["job"] == "test.record"]
    assert (EVERY_MINUTE, True, "succeeded") == (
        shown["expression"],
        shown["enabled"],
        shown["last"]["status"],
    )


def test_the_scheduler_list_command_shows_the_app_schedules(
    environ: dict[str, str], database_url: str, tmp_path: Path
) -> None:
    (tmp_path / "app_schedules.py").write_text(
        textwrap.dedent("""
            import docjobs
            import dramatiq
            from periodiq import cron

            @dramatiq.actor(actor_name="app.poll", periodic=cron("*/5 * * * *"))
            def poll():
                pass

            @docjobs.actor("app.report")
            def report(*, team: str) -> None:
                pass

            docjobs.add_schedule("app.report", "0 6 * * mon", payload={"team": "ops"})
        """)
    )
    env = cli_env(environ, PYTHONPATH=f"{tmp_path}{os.pathsep}{cli_env(environ)['PYTHONPATH']}")
    listed = docjobs_command("scheduler", "--list", "app_schedules", env=env)
    assert 0 == listed.returncode, listed.stderr
    lines = {line.split("  ")[0]: line for line in listed.stdout.splitlines()}
    assert "*/5 * * * *" in lines["app.poll"]
    assert "0 6 * * mon" in lines["app.report"]
    assert "internal.cleanup-rate-limits" in lines


def cron_rows(url: str, schedule: str) -> list[dict[str, Any]]:
    # Only the app's: docjobs' own schedules may be due too, depending on the time of day.
    return rows(url, "SELECT * FROM cron_run WHERE schedule = %s ORDER BY slot", schedule)


def firings(url: str, actor: str) -> list[dict[str, Any]]:
    return rows(
        url, "SELECT * FROM background_job WHERE options ? %s AND actor = %s ORDER BY seq", SLOT_OPTION, actor
    )
