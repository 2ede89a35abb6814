"""What PostgreSQL did during a ``make load`` run, from its own log: deadlocks, lock waits,
autovacuums and checkpoints, each with when it happened.

The load's tail came from these (issue 21): deadlocks between two processes' batch
statements, and statements that grew slower between two vacuums of the job table. A run
that prints them beside the latency says which one a stall lines up with.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

#: What the load's PostgreSQL server logs besides errors (``PostgresServer`` settings).
LOG_SETTINGS = {
    "log_lock_waits": "on",  # a wait longer than deadlock_timeout (1 s)
    "log_autovacuum_min_duration": "0",
    "log_checkpoints": "on",
}

_STAMP = r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\.\d+ \S+"
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
    """Each kind of event, with the times (``HH:MM:SS``, the server's clock) it happened at."""

    at: dict[str, list[str]] = field(default_factory=dict)

    def line(self) -> str:
        parts = []
        for kind in _EVENTS:
            times = self.at.get(kind, [])
            shown = f" (at {', '.join(times[:6])}{', ...' if len(times) > 6 else ''})" if times else ""
            parts.append(f"{len(times)} {kind}{shown}")
        return "PostgreSQL: " + "; ".join(parts)


def read_events(log_text: str) -> ServerEvents:
    return ServerEvents(
        {kind: [m.group(1)[11:] for m in pattern.finditer(log_text)] for kind, pattern in _EVENTS.items()}
    )
