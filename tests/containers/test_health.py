"""``docjobs health``: the containers' liveness checks decide right, on a real PostgreSQL.

The compose test sees them pass in a running stack; these see each one fail when it should.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from docjobs_devkit.services import free_port

from docjobs import errors, health
from docjobs.brokers.local.health import check_worker
from docjobs.scheduler import table as cron_table
from docjobs.settings import Settings


def due_at(settings: Settings, slot: datetime) -> list[str]:
    """The default cron table's schedules with a slot at ``slot`` (read from the table: a new one counts)."""
    table = cron_table.build(settings)
    return [
        job
        for job, schedule in table.items()
        if schedule.enabled and schedule.next_slot(slot - timedelta(seconds=1)) == slot
    ]


def beat(database_url: str, hostname: str, age_seconds: float) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO worker (id, hostname, pid, heartbeat_at) VALUES (%s, %s, 7, now() - %s * interval '1 second')",
            (f"w-{hostname}-{age_seconds}", hostname, age_seconds),
        )


def test_worker_is_healthy_only_with_a_fresh_heartbeat_on_its_host(environ: dict[str, str]) -> None:
    settings = Settings.from_environ(environ)
    url = environ["NEXT_PRIVATE_DATABASE_URL"]
    assert not check_worker(settings, hostname="box-a")[0]  # no row at all
    beat(url, "box-b", 1)  # another host's worker does not count
    assert not check_worker(settings, hostname="box-a")[0]
    beat(url, "box-a", settings.lease_seconds + 5)
    healthy, line = check_worker(settings, hostname="box-a")
    assert not healthy and "s old" in line
    beat(url, "box-a", 1)
    healthy, line = check_worker(settings, hostname="box-a")
    assert healthy, line
    assert line.startswith("worker: 2 process(es) on box-a")


def test_scheduler_is_unhealthy_when_a_due_slot_since_its_start_was_not_fired(
    environ: dict[str, str],
) -> None:
    settings = Settings.from_environ(environ)
    now = datetime(2026, 1, 5, 10, 20, tzinfo=UTC)  # the 10:15 slot is 5 min old
    assert health.check_scheduler(settings, started_at=now - timedelta(minutes=3), now=now).healthy
    late = health.check_scheduler(settings, started_at=now - timedelta(minutes=30), now=now)
    assert not late.healthy
    assert "slot 2026-01-05 10:15 UTC was not fired" in late.line
    due = due_at(settings, datetime(2026, 1, 5, 10, 15, tzinfo=UTC))
    assert "internal.seal-document-sweep" in due  # every 15 minutes
    with psycopg.connect(environ["NEXT_PRIVATE_DATABASE_URL"], autocommit=True) as conn:
        for job_id in due:
            conn.execute(
                "INSERT INTO cron_run (schedule, slot, job_id, fired_by) VALUES (%s, %s, %s, 'elsewhere')",
                (job_id, datetime(2026, 1, 5, 10, 15, tzinfo=UTC), f"job-{job_id}"),
            )
    fired = health.check_scheduler(settings, started_at=now - timedelta(minutes=30), now=now)
    assert fired.healthy, fired.line


def test_web_is_unhealthy_when_nothing_answers(environ: dict[str, str]) -> None:
    settings = Settings.from_environ({**environ, "PORT": str(free_port())})
    verdict = health.check_web(settings)
    assert not verdict.healthy and "does not answer" in verdict.line


@pytest.mark.parametrize(
    ("cmdline", "role"),
    [
        (["/opt/docjobs/bin/python", "/opt/docjobs/bin/docjobs", "web"], "web"),
        (["/opt/docjobs/bin/python", "-m", "dramatiq", "docjobs.runtime:broker", "docjobs.actors"], "worker"),
        (["/opt/docjobs/bin/python3", "-m", "docjobs.cli.dramatiq_worker", "docjobs.actors"], "worker"),
        (["/opt/docjobs/bin/python", "/opt/docjobs/bin/docjobs", "scheduler"], "scheduler"),
        (["/opt/docjobs/bin/python", "/opt/docjobs/bin/docjobs", "web", "--no-worker"], "web"),
    ],
)
def test_the_role_is_read_from_the_container_command(tmp_path: Path, cmdline: list[str], role: str) -> None:
    path = tmp_path / "cmdline"
    path.write_bytes(b"\0".join(part.encode() for part in cmdline) + b"\0")
    assert health.detect_role(path) == role


def test_an_unknown_command_is_refused_with_the_roles_named(tmp_path: Path) -> None:
    path = tmp_path / "cmdline"
    path.write_bytes(b"/bin/sh\0-c\0sleep 1\0")
    with pytest.raises(errors.SettingsError, match="run docjobs health web|worker|scheduler"):
        health.detect_role(path)


def test_the_command_prints_one_line_and_exits_1_when_unhealthy(environ: dict[str, str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "docjobs", "health", "worker"],
        env={**environ, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert result.stdout.count("\n") == 1 and result.stdout.startswith("worker: no worker process on ")
