"""``docjobs health``: is this container's docjobs process alive? One line; exit 0, 1 or 2.

Exit 0 when healthy, 1 when not, 2 when the check cannot be made (a bad setting, or a
role the provider has not: inngest and the stub run no scheduler, inngest no workers).

Container engines run it as the health check of each role:

- ``web``: ``GET /healthz`` on this host answers 200 (the app serves and its database answers).
- ``worker``: a worker process heartbeats, as the provider tells (``Broker.worker_liveness``):
  on local one on this host, within a lease (``brokers/local/health.py``); on bullmq some
  worker, in Redis (``brokers/bullmq/health.py``). Inngest has no workers to check.
- ``scheduler``: periodiq keeps no heartbeat, so the check looks at what a scheduler is for:
  every enabled schedule of docjobs' own table whose latest slot came since this process
  started (and is at least :data:`FIRING_SLACK_SECONDS` old) has its row in the cron ledger,
  fired by this scheduler or any other. A hung scheduler shows within one period of the most
  frequent schedule. (The app's schedules are declared by modules this check does not load.)

The role is read from the container's command (``/proc/1/cmdline``) when not given, so the
image's one ``HEALTHCHECK`` suits every role.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import httpx
import psycopg

from docjobs import errors, redaction
from docjobs.db.pool import connect, connect_kwargs
from docjobs.logging import first_line
from docjobs.settings import Settings

Role = Literal["web", "worker", "scheduler"]
ROLES: tuple[Role, ...] = ("web", "worker", "scheduler")

#: How long each network step of a check may take.
CHECK_TIMEOUT_SECONDS = 5.0
#: How long after its slot a firing must be in the ledger (periodiq fires on the minute).
FIRING_SLACK_SECONDS = 120.0
#: The command line of a container's first process.
INIT_CMDLINE = Path("/proc/1/cmdline")


@dataclass(frozen=True)
class Verdict:
    """A check's outcome: ``healthy`` and the one line that says why."""

    healthy: bool
    line: str


def role_of(cmdline: list[str]) -> Role | None:
    """The role a container's command runs, or ``None`` when it is none of them.

    ``docjobs worker`` replaces itself with ``python -m dramatiq``, and ``docjobs scheduler``
    runs periodiq, so both spellings count.
    """
    words = [os.path.basename(word) for word in cmdline]
    if "dramatiq" in words or "worker" in words or "docjobs.cli.dramatiq_worker" in words:
        return "worker"
    if "periodiq" in words or "scheduler" in words:
        return "scheduler"
    if "web" in words:
        return "web"
    return None


def detect_role(cmdline_file: Path = INIT_CMDLINE) -> Role:
    """This container's role, from its first process's command line.

    Raises:
        errors.SettingsError: The command runs no role with a health check.
    """
    try:
        cmdline = [part.decode(errors="replace") for part in cmdline_file.read_bytes().split(b"\0") if part]
    except OSError as exc:
        raise errors.SettingsError(f"cannot read {cmdline_file} ({exc.strerror}): name the role") from None
    role = role_of(cmdline)
    if role is None:
        raise errors.SettingsError(
            f"cannot tell the role of {' '.join(cmdline[:3])!r}: run docjobs health {'|'.join(ROLES)}"
        )
    return role


def run(role: str | None) -> int:
    """``docjobs health [ROLE]``: print the check's line; 0 when healthy, else 1.

    Raises:
        errors.SettingsError: A bad setting, or no role given and none to read.
        errors.NotSupportedError: The provider has no such role (the CLI exits 2).
    """
    # A liveness check reads the database or Redis: it needs none of the production secrets.
    settings = Settings.from_environ(secrets=False)
    chosen: Role = detect_role() if role is None else _role(role)
    try:
        verdict = check(chosen, settings)
    except psycopg.Error as exc:
        reason = first_line(exc)
        verdict = Verdict(False, f"{chosen}: the database does not answer: {reason}")
    print(redaction.redact(verdict.line), flush=True)
    return 0 if verdict.healthy else 1


def _role(name: str) -> Role:
    for role in ROLES:
        if role == name:
            return role
    raise errors.SettingsError(f"no health check for {name!r}: the roles are {', '.join(ROLES)}")


def check(role: Role, settings: Settings) -> Verdict:
    """Run ``role``'s liveness check with ``settings``.

    Raises:
        errors.NotSupportedError: The provider has no such role (its capabilities say so).
    """
    if role == "web":
        return check_web(settings)
    from docjobs import runtime  # the provider's class only: nothing is built or connected

    provider = runtime.provider_class(settings.provider)
    capabilities = provider.capabilities_for(settings)
    if role == "worker":
        if not capabilities.workers:
            raise errors.NotSupportedError(f"the {provider.name} provider has no workers to check")
        return Verdict(*provider.worker_liveness(settings))
    if not capabilities.scheduler:
        raise errors.NotSupportedError(f"the {provider.name} provider has no scheduler to check")
    return check_scheduler(settings)


def check_web(settings: Settings) -> Verdict:
    """``GET /healthz`` on this host's port answers 200."""
    url = f"http://127.0.0.1:{settings.port}{settings.base_path}/healthz"
    try:
        response = httpx.get(url, timeout=CHECK_TIMEOUT_SECONDS)
    except httpx.HTTPError as exc:
        return Verdict(False, f"web: {url} does not answer ({type(exc).__name__})")
    if response.status_code != 200:
        return Verdict(False, f"web: {url} answered {response.status_code}")
    return Verdict(True, f"web: {url} answered 200")


def check_scheduler(
    settings: Settings, *, started_at: datetime | None = None, now: datetime | None = None
) -> Verdict:
    """Every enabled schedule's slots since ``started_at`` were fired (any scheduler's firing counts)."""
    from docjobs.db.cron import CronLedger
    from docjobs.db.pool import Database
    from docjobs.scheduler.table import build

    now = now or datetime.now(UTC)
    started_at = started_at or process_started_at()
    table = build(settings)
    with _connect(settings):
        pass  # the database answers: a clearer line than the ledger's pool error
    database = Database(
        _database_url(settings),
        max_size=1,
        name="docjobs-health",
        transaction_pooling=settings.transaction_pooling,
    )
    try:
        latest = CronLedger(database).latest([schedule.job_id for schedule in table.enabled()])
    finally:
        database.close()
    cutoff = now - timedelta(seconds=FIRING_SLACK_SECONDS)
    for schedule in table.enabled():
        assert schedule.cron is not None  # enabled
        slot = schedule.cron.latest_at_or_before(cutoff)
        if slot < started_at:
            continue  # due before this scheduler ran: not its miss
        fired = latest.get(schedule.job_id)
        if fired is None or fired["slot"] < slot:
            return Verdict(
                False, f"scheduler: {schedule.job_id}'s slot {slot:%Y-%m-%d %H:%M} UTC was not fired"
            )
    return Verdict(True, f"scheduler: {len(table.enabled())} schedule(s) fired on time")


def process_started_at(pid: int = 1) -> datetime:
    """When process ``pid`` started (Linux ``/proc``)."""
    ticks = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    boot = next(
        int(line.split()[1])
        for line in Path("/proc/stat").read_text().splitlines()
        if line.startswith("btime")
    )
    return datetime.fromtimestamp(boot + ticks / os.sysconf("SC_CLK_TCK"), UTC)


def _database_url(settings: Settings) -> str:
    if settings.database_url is None:
        raise errors.SettingsError("NEXT_PRIVATE_DATABASE_URL is required for the health check")
    return settings.database_url


def _connect(settings: Settings) -> psycopg.Connection[dict[str, Any]]:
    # docjobs' connection options (its name, autocommit, dict rows), with the check's own
    # time-out; no prepared statements, as the URL may go through a transaction pooler.
    options = {**connect_kwargs(transaction_pooling=True), "connect_timeout": int(CHECK_TIMEOUT_SECONDS)}
    return connect(_database_url(settings), **options)
