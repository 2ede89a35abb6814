"""Actors that report log lines and progress (``docjobs.log_line``, ``docjobs.set_progress``).

Imported by the tests that run them, before their runtime is built, so Inngest serves them too.
"""

from __future__ import annotations

import threading
from typing import Any

from dramatiq.middleware import CurrentMessage

import docjobs
from tests.support.actors import record, wait_for_gate

#: Set by ``test.log_many`` when it returns, by key: its end, seen without PostgreSQL.
finished: dict[str, threading.Event] = {}


@docjobs.actor("test.log_steps", display_name="Log Steps", max_retries=0)
def log_steps_job(*, key: str) -> None:
    """Lines and progress around two steps: on inngest, three calls of which two replay."""
    docjobs.log_line(f"{key}: starting")
    docjobs.set_progress(10)
    docjobs.run_task("first", lambda: record(key, "first"))
    docjobs.log_line("<script>alert('x')</script>")
    docjobs.set_progress({"page": 3, "pages": 50})
    docjobs.run_task("second", lambda: record(key, "second"))
    docjobs.set_progress(100)
    docjobs.log_line(f"{key}: done")


@docjobs.actor("test.log_fail_once", display_name="Log Fail Once", min_backoff=20, max_backoff=200)
def log_fail_once_job(*, key: str) -> None:
    """A line per attempt; the first attempt fails after it."""
    message = CurrentMessage.get_current_message()
    retried = int(message.options.get("retries", 0)) if message is not None else 0
    docjobs.log_line(f"{key}: attempt {retried + 1}")
    if not retried:
        raise RuntimeError("first attempt fails")


@docjobs.actor("test.log_many", display_name="Log Many", max_retries=0)
def log_many_job(*, key: str, count: int, chars: int = 0) -> None:
    """``count`` lines, each ``chars`` characters past its number."""
    for number in range(1, count + 1):
        docjobs.log_line(f"{key} line {number} " + "x" * chars)
        docjobs.set_progress(number * 100 / count)
    finished.setdefault(key, threading.Event()).set()


@docjobs.actor("test.log_bad", display_name="Log Bad", max_retries=3, min_backoff=10, max_backoff=10)
def log_bad_job(*, key: str, progress: Any) -> None:
    """Reports a progress the test chose (a bad one fails the job at once)."""
    record(key, "ran")
    docjobs.set_progress(progress)


@docjobs.actor("test.log_gated", display_name="Log Gated", max_retries=0)
def log_gated_job(*, key: str) -> None:
    """A line and 40 %, then, once the test opens the gate, another line and 100 %."""
    docjobs.log_line("step 1 of 2: <b>fetched</b> <script>document.title = 'owned'</script>")
    docjobs.set_progress(40)
    wait_for_gate(key)
    docjobs.log_line("step 2 of 2: sealed")
    docjobs.set_progress(100)
