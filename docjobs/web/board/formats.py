"""How the board's pages write times, durations, job and worker ids, and a job's options.

Every time is rendered on the server in UTC and says so: lists show how long ago
(``2 min ago``) with the UTC time in the tooltip, a job's page the UTC time to the
second (``2026-12-06 16:02:11 UTC``).

A job id is a UUIDv7 unless the app chose it: its first digits are a timestamp, the
same for every job sent in one millisecond, so the short form is its last group
(12 random hex digits). Worker ids are uuid4 hex, random throughout: 8 digits name one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from markupsafe import Markup, escape

#: Hex digits of a worker's id shown beside its host and pid.
WORKER_ID_DIGITS = 8
#: Options Dramatiq and docjobs keep on a message for their own use, not set by whoever sent it.
INTERNAL_OPTIONS = frozenset(
    {
        "eta",  # the delay, as an instant (shown as the job's run time)
        "retries",  # the attempt counter
        "traceback",  # the last failure's (shown with the attempts)
        "requeue_timestamp",  # Dramatiq's Retries middleware
        "redis_message_id",  # bullmq's key in Redis
        "inngest_run_id",  # shown on its own line
        "runAt",  # inngest's delay
        "group_completion_uuid",
        "group_completion_callbacks",
    }
)

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-([0-9a-f]{12})$", re.IGNORECASE)
_SPAN_UNITS = (("d", 86400), ("h", 3600), ("min", 60))


def utc(moment: datetime | None) -> str:
    """``2026-12-06 16:02:11 UTC``, or ``-`` for no time."""
    if moment is None:
        return "-"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def machine_utc(moment: datetime) -> str:
    """``2026-12-06T16:02:11Z``, for ``<time datetime>``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def relative(moment: datetime | None, now: datetime) -> str:
    """``2 min ago``, ``in 23 h 56 min``, ``just now``; ``-`` for no time.

    Rounded to the minute from an hour on (to the hour from a day on), and shown in the two
    largest units, so 23 h 56 min is not "23 h".
    """
    if moment is None:
        return "-"
    seconds = (now - moment).total_seconds()
    if abs(seconds) < 1:
        return "just now"
    text = _coarse(abs(seconds))
    return f"{text} ago" if seconds > 0 else f"in {text}"


def span(seconds: float | None) -> str:
    """A duration for people: ``340 ms``, ``4.2 s``, ``3 min 20 s``, ``2 h 5 min``."""
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    for (unit, size), (small_unit, small_size) in zip(_SPAN_UNITS, (*_SPAN_UNITS[1:], ("s", 1)), strict=True):
        if seconds >= size:
            whole, rest = divmod(int(seconds), size)
            part = rest // small_size
            return f"{whole} {unit} {part} {small_unit}" if part else f"{whole} {unit}"
    raise AssertionError("unreachable: seconds >= 60 fall in a unit")


def run_time(seconds: float | None) -> str:
    """A run-time percentile: ``340 ms``, ``12.0 s``; ``-`` for none (the overview's figures and chart)."""
    if seconds is None:
        return "-"
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"


def duration(job: Mapping[str, Any], now: datetime) -> str:
    """The jobs list's duration: the run time of a finished job, else how long it has waited or run."""
    status, started, finished = job["status"], job["started_at"], job["completed_at"]
    if status in ("COMPLETED", "FAILED", "CANCELLED"):
        if started is None or finished is None:
            return "never ran" if status == "CANCELLED" else "-"
        return span((finished - started).total_seconds())
    if status == "PROCESSING" and started is not None:
        return f"running {span((now - started).total_seconds())}"
    if job["run_at"] > now:
        return f"due {relative(job['run_at'], now)}"
    return f"waiting {span((now - job['run_at']).total_seconds())}"


def short_id(job_id: str) -> str:
    """A UUID's last group (``…5e1f0c2a9b3d``); an id the app chose, whole."""
    match = _UUID.match(job_id)
    return f"…{match[1]}" if match else job_id


def worker_name(worker_id: str | None, hostname: str | None, pid: int | None) -> Markup:
    """A worker as the Workers table and a job's attempts both name it: host:pid and short id."""
    if not worker_id:
        return Markup("")
    short = worker_id[:WORKER_ID_DIGITS]
    tag = Markup('<code class="worker-id" title="worker {}">{}</code>').format(worker_id, short)
    if hostname is None:  # the row goes when the worker stops
        return Markup('{} <span class="muted">(stopped)</span>').format(tag)
    return Markup("{}:{} {}").format(escape(hostname), pid, tag)


def user_options(job: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The options whoever sent the job chose (or its actor's defaults), without internal ones."""
    shown = [("priority", str(job["priority"])), ("max_retries", str(job["max_retries"]))]
    # A run time the sender chose: never run, and not put back since (a board retry sets
    # last_retried_at, and its run_at is the retry's, not a delay).
    sent_as_is = job["attempts"] == 0 and job.get("last_retried_at") is None
    if job["status"] == "PENDING" and sent_as_is and job["run_at"] > job["submitted_at"]:
        waited = (job["run_at"] - job["submitted_at"]).total_seconds()
        if waited >= 1:  # under a second: the send's own latency, not a delay
            shown.append(("delay", f"{span(waited)} (until {utc(job['run_at'])})"))
    for name, value in sorted((job.get("options") or {}).items()):
        if name not in INTERNAL_OPTIONS and name != "max_retries":
            shown.append((name, json.dumps(value, default=str, ensure_ascii=False)))
    return shown


def detail_items(detail: Any) -> list[tuple[str, str]]:
    """An audit entry's details as ``name, value`` pairs an admin reads: text as is, numbers and
    booleans in JSON's words, lists and objects as compact JSON."""
    if not isinstance(detail, Mapping):
        return [] if detail in (None, "", {}) else [("", _plain(detail))]
    return [(str(name), _plain(value)) for name, value in detail.items()]


def _plain(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str, ensure_ascii=False, separators=(", ", ": "))


def _coarse(seconds: float) -> str:
    """``42 s``, ``5 min``, ``23 h 56 min``, ``2 d 4 h``: rounded to the minute (to the hour from
    a day on), in the two largest units."""
    if seconds < 60:
        return f"{int(seconds)} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    if minutes < 24 * 60:
        hours, rest = divmod(minutes, 60)
        return f"{hours} h {rest} min" if rest else f"{hours} h"
    days, rest = divmod(round(seconds / 3600), 24)
    return f"{days} d {rest} h" if rest else f"{days} d"
