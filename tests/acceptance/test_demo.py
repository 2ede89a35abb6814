"""``docjobs demo``, run as users run it: a subprocess, its own data directory and port.

A demo run costs seconds, so each test checks much in one or two runs.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from docjobs_devkit.http import serve
from docjobs_devkit.services import free_port

from docjobs.runtime import Runtime
from docjobs.web.app import create_app
from tests.conftest import REPO_ROOT, wait_for
from tests.support.processes import (
    DEMO_ONCE_MAX_LINES,
    assert_demo_completed,
    assert_demo_said_little,
    cli_env,
    docjobs,
    postgres_processes_of,
)

#: A whole demo run, from an empty data directory, on a loaded machine (one takes 10-20 s).
DEMO_RUN_TIMEOUT_SECONDS = 90.0
#: The in-process scheduler's sweeps (every 15 min) may fire at a run's start, as catch-ups.
CATCH_UP_SWEEPS = 4


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    """The demo's data directory; a postgres the demo failed to stop is stopped afterwards."""
    path = tmp_path / ".docjobs"
    yield path
    for process in postgres_processes_of(path / "pgdata"):
        process.terminate()


def start_demo(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """``docjobs demo`` (serving until stopped), its output in ``log``."""
    with open(log, "wb") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "docjobs", "demo"],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_stop_signals_by_default,
        )


def _stop_signals_by_default() -> None:
    # Under nohup (a CI runner's, say) SIGHUP comes ignored, and the demo rightly keeps it so.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)


def readme_quick_start(command: str) -> str:
    """The line of the README's quick start that runs ``command``, comment and all."""
    quick_start = (REPO_ROOT / "README.md").read_text().split("## Quick start\n", 1)[1]
    block = quick_start.split("```sh\n", 1)[1].split("```", 1)[0]
    (line,) = [line for line in block.splitlines() if line.split("#")[0].strip() == command]
    return line


def wait_exit(process: subprocess.Popen[bytes]) -> int:
    """The exit code; a process still there after a minute is killed, and the test fails."""
    try:
        return process.wait(60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise


def kill_if_running(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@pytest.mark.timeout(300)  # two demo runs
def test_a_served_demo_stops_in_order_on_sigterm_and_the_next_run_judges_only_its_own_jobs(
    data_dir: Path, tmp_path: Path
) -> None:
    port = free_port()
    env = cli_env({}, PORT=str(port), NEXT_PRIVATE_JOBS_DATA_DIR=str(data_dir))
    log = tmp_path / "demo.log"
    demo = start_demo(env, log)
    try:
        wait_for(lambda: "Ctrl-C stops." in log.read_text(), timeout=DEMO_RUN_TIMEOUT_SECONDS)
        output = log.read_text()

        # The board's URL is printed, it works as printed, and / leads there.
        (board_url,) = re.findall(r"; board: (\S+)$", output, re.MULTILINE)
        assert f"http://127.0.0.1:{port}/api/jobs/board" == board_url
        assert 200 == httpx.get(board_url, follow_redirects=True, timeout=10).status_code
        root = httpx.get(f"http://127.0.0.1:{port}/", timeout=10)
        assert (307, "/api/jobs/board/") == (root.status_code, root.headers["location"])

        # Ids show their distinctive (random) end, one job each; the retry is one line, no traceback.
        shown = re.findall(r"^  job     (\S+)  (\S+) ", output, re.MULTILINE)
        assert shown
        assert all(re.fullmatch(r"[0-9a-f]{12}", job_id) for job_id, _ in shown), shown
        assert len({job_id for job_id, _ in shown}) == len({(i, actor) for i, actor in shown})
        assert "Traceback" not in output
        assert "Hello, another process!" in output
        assert (
            "email   to Carol <carol@example.com>: Signing Complete!  [attached: Lease agreement.pdf]"
            in output
        )
        assert (data_dir / "pgdata" / "PG_VERSION").exists()
        (ran_first,) = re.findall(r"^demo: (\d+) jobs this run, ", output, re.MULTILINE)

        # The hint, copied into a shell elsewhere, reaches this demo: its self-request is accepted.
        hint = output.split("try in another shell:\n", 1)[1].splitlines()[0].strip()
        assert f"NEXT_PRIVATE_INTERNAL_WEBAPP_URL=http://127.0.0.1:{port} " in hint
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        command = hint.replace(".venv/bin/docjobs", f"{shlex.quote(sys.executable)} -m docjobs")
        triggered = subprocess.run(
            ["bash", "-c", command],
            cwd=elsewhere,
            env=cli_env({}),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert 0 == triggered.returncode, triggered.stderr
        assert "" == triggered.stderr  # no failed self-request, no refused signature
        wait_for(lambda: "Hello, you!" in log.read_text(), timeout=30)

        # An earlier run's failure, left in the database the runs share.
        assignments = dict(word.split("=", 1) for word in shlex.split(hint) if re.match(r"[A-Z_]+=", word))
        with psycopg.connect(assignments["NEXT_PRIVATE_DATABASE_URL"], autocommit=True) as conn:
            conn.execute(
                "INSERT INTO background_job (id, actor, name, status, last_error) "
                "VALUES ('earlier-run', 'demo.greet', 'demo.greet', 'FAILED', 'it failed then')"
            )

        # A second signal while stopping does not cut the order short.
        demo.send_signal(signal.SIGTERM)
        wait_for(lambda: "uvicorn.error: Shutting down" in log.read_text(), timeout=30)
        demo.send_signal(signal.SIGTERM)
        assert 0 == wait_exit(demo)
    finally:
        kill_if_running(demo)
    output = log.read_text()
    assert "Could not remove worker row" not in output
    assert "Traceback" not in output
    pgdata = data_dir / "pgdata"
    assert [] == postgres_processes_of(pgdata)
    assert not (pgdata / "postmaster.pid").exists()

    # What a killed run leaves behind: its pid among the server's holders, and a
    # postmaster.pid naming a pid that is now some other process (here: pytest).
    (pgdata / ".handle_pids.json").write_text(json.dumps([_dead_pid(), os.getpid()]))
    (pgdata / "postmaster.pid").write_text(
        f"{os.getpid()}\n{pgdata}\n1700000000\n5432\n{pgdata}\n\n  5432001         0\nready   \n"
    )
    # The README's quick start, as written (make echoes its command: one line more).
    result = subprocess.run(
        ["bash", "-c", readme_quick_start("make demo ARGS=--once")],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=DEMO_RUN_TIMEOUT_SECONDS,
    )
    assert 0 == result.returncode, result.stdout + result.stderr
    assert_demo_said_little(result, max_lines=DEMO_ONCE_MAX_LINES + 1)
    ran_again = assert_demo_completed(result.stdout)
    assert ran_again <= int(ran_first) + CATCH_UP_SWEEPS, result.stdout
    assert f"; board: http://127.0.0.1:{port}/api/jobs/board" in result.stdout
    sealed = data_dir / "sealed" / "Lease agreement.pdf"
    assert (
        f"demo: sealed PDF written to {sealed}; signature intact, valid and covering the whole file"
        in result.stdout
    )
    assert sealed.read_bytes().startswith(b"%PDF")
    assert [] == postgres_processes_of(pgdata)

    # The README's check of that PDF, as written, in a fresh shell where .docjobs is.
    (check,) = re.findall(r"`(\.venv/bin/docjobs verify [^`]+)`", (REPO_ROOT / "README.md").read_text())
    # Before: "docjobs: error: NEXT_PRIVATE_DATABASE_URL is required ...", exit 2.
    verified = subprocess.run(
        ["bash", "-c", check.replace(".venv/bin/docjobs", f"{shlex.quote(sys.executable)} -m docjobs")],
        cwd=data_dir.parent,
        env=cli_env({}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (0, "") == (verified.returncode, verified.stderr), verified.stdout + verified.stderr
    assert ".docjobs/sealed/Lease agreement.pdf: VALID" == verified.stdout.splitlines()[-1]


@pytest.mark.timeout(240)  # a failed start, then a run cut short
def test_a_failed_start_or_sighup_mid_run_stops_the_demo_and_its_postgres(
    data_dir: Path, tmp_path: Path
) -> None:
    port = free_port()
    env = cli_env({}, PORT=str(port), NEXT_PRIVATE_JOBS_DATA_DIR=str(data_dir))
    pgdata = data_dir / "pgdata"
    with socket.create_server(("127.0.0.1", port)):  # the port is taken
        result = docjobs("demo", "--once", env=env, timeout=DEMO_RUN_TIMEOUT_SECONDS)
    assert 1 == result.returncode, result.stdout + result.stderr
    last = result.stderr.splitlines()[-1]
    assert last.startswith("demo: the web app could not start on ") and last.endswith(str(port)), last
    assert [] == postgres_processes_of(pgdata)

    log = tmp_path / "demo.log"
    demo = start_demo(env, log)
    try:
        wait_for(lambda: "demo: web app" in log.read_text(), timeout=DEMO_RUN_TIMEOUT_SECONDS)
        demo.send_signal(signal.SIGHUP)
        assert 128 + signal.SIGHUP == wait_exit(demo)
    finally:
        kill_if_running(demo)
    output = log.read_text()
    assert "demo: stopped by SIGHUP before it was done; what it started is stopped" == output.splitlines()[-1]
    assert "Could not remove worker row" not in output
    assert [] == postgres_processes_of(pgdata)
    assert not (pgdata / "postmaster.pid").exists()


def test_the_demo_runs_its_signing_flow_through_the_inngest_emulator(
    database_url: str, tmp_path: Path
) -> None:
    # The job sent inside a transaction goes through the outbox, and the one `docjobs
    # trigger` sends from another process is an event, run by Inngest.
    stdout = _demo_once_on("inngest", database_url, tmp_path)
    first = stdout.splitlines()[0]
    assert re.search(r"\d+ functions synced with the Inngest emulator, on http://127\.0\.0\.1:\d+ ", first), (
        first
    )
    assert "signature intact, valid and covering the whole file" in stdout


def test_the_demo_runs_its_signing_flow_on_bullmq(database_url: str, tmp_path: Path) -> None:
    # `docjobs trigger` sends straight to Redis, from another process.
    stdout = _demo_once_on("bullmq", database_url, tmp_path)
    assert "(bullmq provider)" in stdout.splitlines()[0]


@pytest.mark.parametrize("node_env", ["development", "production"])
def test_the_apps_root_leads_to_the_board_in_development_only(
    make_runtime: Callable[..., Runtime], node_env: str
) -> None:
    app = create_app(make_runtime(NODE_ENV=node_env), embedded_worker=False, embedded_scheduler=False)
    with serve(app) as url:
        response = httpx.get(f"{url}/", timeout=10)
    if node_env == "development":
        assert (307, "/api/jobs/board/") == (response.status_code, response.headers["location"])
    else:
        assert 404 == response.status_code


def _demo_once_on(provider: str, database_url: str, tmp_path: Path) -> str:
    """``docjobs demo --once`` on ``provider``: it completes, says little, empties the outbox
    and greets everyone, the other process's job included; its output."""
    env = cli_env(
        {"NEXT_PRIVATE_DATABASE_URL": database_url, "NEXT_PRIVATE_JOBS_PROVIDER": provider},
        PORT=str(free_port()),
        NEXT_PRIVATE_JOBS_DATA_DIR=str(tmp_path / ".docjobs"),
    )
    result = docjobs("demo", "--once", env=env, timeout=DEMO_RUN_TIMEOUT_SECONDS)
    assert 0 == result.returncode, result.stdout + result.stderr
    assert_demo_said_little(result)
    assert_demo_completed(result.stdout)
    with psycopg.connect(database_url) as conn:
        assert (0,) == conn.execute("SELECT count(*) FROM job_outbox").fetchone()
        rows = conn.execute(
            "SELECT payload->>'name' FROM background_job WHERE actor = 'demo.greet' AND status = 'COMPLETED'"
        ).fetchall()
    assert {"Ada", "Grace", "Linus", "another process"} == {name for (name,) in rows}
    return result.stdout


def _dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid
