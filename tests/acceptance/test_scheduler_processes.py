"""Every scheduler driver at once, as separate processes: each slot runs exactly once.

Two ``docjobs scheduler`` (periodiq) processes, ``docjobs web`` with its in-process
scheduler and embedded worker, and a ``docjobs worker`` share one PostgreSQL. Two
schedules fire every minute; one periodiq process is killed half-way.
"""

from __future__ import annotations

import os
import re
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from docjobs_devkit.services import free_port

from docjobs.scheduler.table import DEFAULT_TABLE, variable_for
from tests.conftest import wait_for
from tests.support.processes import Processes, answers, cli_env, docjobs

EVERY_MINUTE = ("internal.cleanup-rate-limits", "internal.cleanup-webhook-calls")
SLOTS_TO_WATCH = 3
#: "Job <id> (<actor>) started": the line both log formats (docjobs', Dramatiq's) carry.
UNFINISHED_FIRINGS = (
    "SELECT 1 FROM background_job WHERE options ? 'scheduled_at' AND status IN ('PENDING', 'PROCESSING')"
)
STARTED = re.compile(r"Job (\S+) \((internal\.[\w.-]+)\) started")


def rows(url: str, query: str) -> list[dict[str, Any]]:
    with psycopg.connect(url, row_factory=psycopg.rows.dict_row) as conn:
        return conn.execute(query.encode()).fetchall()


def starts(logs: list[Path]) -> list[tuple[str, str]]:
    """(message id, actor) of every job start in the processes' logs."""
    return [match.groups() for log in logs for match in STARTED.finditer(log.read_text(errors="replace"))]


@pytest.mark.timeout(300)  # three one-minute slots
def test_two_periodiq_schedulers_and_the_in_process_one_run_each_slot_once(
    processes: Processes, environ: dict[str, str], database_url: str, tmp_path: Path
) -> None:
    port = free_port()
    schedules = {variable_for(entry.job_id): "off" for entry in DEFAULT_TABLE}
    schedules.update({variable_for(job_id): "* * * * *" for job_id in EVERY_MINUTE})
    env = cli_env(
        environ,
        **schedules,
        PORT=str(port),
        NEXT_PRIVATE_INTERNAL_WEBAPP_URL=f"http://127.0.0.1:{port}",
        NEXT_PRIVATE_JOBS_EMBEDDED_SCHEDULER="true",
    )
    logs = [tmp_path / name for name in ("periodiq-1.log", "periodiq-2.log", "web.log", "worker.log")]
    doomed = processes.start("scheduler", env=env, log=logs[0])
    processes.start("scheduler", env=env, log=logs[1])
    processes.start("web", env=env, log=logs[2])
    processes.start("worker", "--threads", "2", env=env, log=logs[3])
    wait_for(lambda: answers(f"http://127.0.0.1:{port}/healthz"), timeout=30)
    assert httpx.get(f"http://127.0.0.1:{port}/healthz").json()["scheduler"] is True
    up = datetime.now(UTC)

    def finished_slots() -> list[datetime]:
        found = rows(database_url, "SELECT slot FROM cron_run WHERE status = 'succeeded' ORDER BY slot")
        return sorted({row["slot"] for row in found})

    # The slot of the start-up minute, which every scheduler fires as it starts (it is
    # within the tolerance); then one periodiq process dies, and the others go on.
    first = up.replace(second=0, microsecond=0)
    wait_for(lambda: any(slot >= first for slot in finished_slots()), timeout=90, interval=0.5)
    os.killpg(doomed.pid, signal.SIGKILL)
    last = first + timedelta(minutes=SLOTS_TO_WATCH - 1)
    wait_for(lambda: last in finished_slots(), timeout=60 * SLOTS_TO_WATCH + 30, interval=0.5)
    # Every firing sent, the duplicates included, has been through a worker.
    wait_for(lambda: not rows(database_url, UNFINISHED_FIRINGS), timeout=30, interval=0.5)

    firings = rows(database_url, "SELECT * FROM cron_run ORDER BY slot, schedule")
    jobs = rows(database_url, "SELECT id FROM background_job WHERE options ? 'scheduled_at'")
    watched = [firing for firing in firings if first <= firing["slot"] <= last]
    assert SLOTS_TO_WATCH * len(EVERY_MINUTE) == len(watched)
    assert {"succeeded"} == {firing["status"] for firing in firings}, firings

    # Exactly one start per fired (schedule, slot), and it is the firing the ledger names.
    started = starts(logs)
    assert sorted((firing["job_id"], firing["schedule"]) for firing in firings) == sorted(started)

    # There really were rivals: more firings were sent than ran, and the rest were skipped.
    assert len(jobs) > len(firings)
    skipped = sum(log.read_text(errors="replace").count("another firing owns the slot") for log in logs)
    assert len(jobs) - len(firings) == skipped

    listing = docjobs("scheduler", "--list", env=env)
    assert 0 == listing.returncode, listing.stderr
    newest = firings[-1]["slot"].strftime("%Y-%m-%d %H:%M UTC")
    for job_id in EVERY_MINUTE:
        (line,) = [line for line in listing.stdout.splitlines() if line.startswith(job_id + " ")]
        assert ["* * * * *", "succeeded"] == [cell for cell in re.split(r"\s{2,}", line)[1:4:2]]
        assert newest in line
    (off,) = [
        line for line in listing.stdout.splitlines() if line.startswith("internal.seal-document-sweep ")
    ]
    assert "off" == re.split(r"\s{2,}", off)[1]


def test_no_cron_keeps_the_scheduler_out_of_the_web_process(
    processes: Processes, environ: dict[str, str], tmp_path: Path
) -> None:
    port = free_port()
    env = cli_env(environ, PORT=str(port), NEXT_PRIVATE_JOBS_EMBEDDED_SCHEDULER="true")
    processes.start("web", "--no-cron", env=env, log=tmp_path / "web.log")
    wait_for(lambda: answers(f"http://127.0.0.1:{port}/healthz"), timeout=30)
    assert httpx.get(f"http://127.0.0.1:{port}/healthz").json()["scheduler"] is False
