"""What PostgreSQL did during a ``make load`` run, from its own log: deadlocks, lock waits,
autovacuums and checkpoints, each with when it happened.

The load's tail came from these (issue 21): deadlocks between two processes' batch
statements, and statements that grew slower between two vacuums of the job table. A run
that prints them beside the latency says which one a stall lines up with.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

#: What the load's PostgreSQL server logs besides errors (``PostgresServer`` settings).
LOG_SETTINGS = {
    "log_lock_waits": "on",  # a wait longer than deadlock_timeout (1 s)
    "log_autovacuum_min_duration": "0",
    "log_checkpoints": "on",
}

_STAMP = r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+) (\S+)"
_EVENTS = {
    "deadlocks": re.compile(_STAMP + r" .*ERROR:\s+deadlock detected", re.M),
    "lock waits": re.compile(_STAMP + r" .*LOG:\s+process \d+ still waiting for", re.M),
    "autovacuums of background_job": re.compile(
        _STAMP + r" .*LOG:\s+automatic vacuum of table \"[^\"]+\.public\.background_job\"", re.M
    ),
    "checkpoints": re.compile(_STAMP + r" .*LOG:\s+checkpoint starting", re.M),
}


@dataclass
class ServerEvents:
    """Each kind of event, with when it happened: seconds since the run's first send, as the
    rest of the report counts (an autovacuum is logged when it ends)."""

    at: dict[str, list[float]] = field(default_factory=dict)

    def line(self) -> str:
        parts = []
        for kind in _EVENTS:
            times = self.at.get(kind, [])
            shown = ", ".join(f"{t:g} s" for t in times[:8]) + (", ..." if len(times) > 8 else "")
            parts.append(f"{len(times)} {kind}" + (f" (at {shown})" if times else ""))
        return "PostgreSQL: " + "; ".join(parts)


def read_events(log_text: str, since: float) -> ServerEvents:
    """The events logged from ``since`` (``time.time()`` of the run's first send) on."""
    at: dict[str, list[float]] = {}
    for kind, pattern in _EVENTS.items():
        times = (round(_epoch(m.group(1), m.group(2)) - since, 1) for m in pattern.finditer(log_text))
        at[kind] = [t for t in times if t >= 0]
    return ServerEvents(at)


def _epoch(stamp: str, zone: str) -> float:
    moment = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S.%f")
    if zone in ("UTC", "GMT"):
        return moment.replace(tzinfo=UTC).timestamp()
    return moment.timestamp()  # the server logs in this machine's zone
