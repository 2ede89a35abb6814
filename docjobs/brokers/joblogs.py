"""The writer behind ``docjobs.log_line`` and ``docjobs.set_progress``, on every provider.

Each call is one short statement on a pooled connection, made in the job's own thread,
so the board shows a line as soon as it is written. A job that never logs costs
nothing: the writer is put in each worker thread's context once, when the thread
starts (Inngest's calls get it from their function, ``inngest/functions.py``).

A log must never fail its job. When PostgreSQL does not answer within
:data:`WRITE_WAIT_SECONDS`, the line is dropped with a warning and writes pause for
:data:`OUTAGE_PAUSE_SECONDS` (dropping lines at once, counted), so a chatty job does
not wait on every line of an outage: at most one wait and one warning per pause.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import dramatiq
import psycopg

from docjobs import joblogs

logger = logging.getLogger(__name__)

#: The longest a log call waits for a pooled connection before it drops its line.
WRITE_WAIT_SECONDS = 1.0
#: After a failed write, lines are dropped without trying for this long.
OUTAGE_PAUSE_SECONDS = 5.0


class LogRows(Protocol):
    """The part of ``db.joblogs.JobLogStore`` the writer uses."""

    def append(self, job_id: str, attempt: int, line: str, *, max_lines: int, timeout_seconds: float) -> None:
        """Append a line, keeping the newest ``max_lines``."""
        ...

    def set_progress(self, job_id: str, progress_json: str, *, timeout_seconds: float) -> None:
        """Set the progress."""
        ...


class JobLogWriter(dramatiq.Middleware):
    """Writes the running job's lines and progress, best effort (see the module's docstring).

    Args:
        rows: Where they are kept.
        max_lines: Lines a job keeps (``joblogs.MAX_LINES_PER_JOB``).
        clock: Seconds, monotonic (tests pass their own).
    """

    def __init__(
        self,
        rows: LogRows,
        *,
        max_lines: int = joblogs.MAX_LINES_PER_JOB,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rows = rows
        self.max_lines = max_lines
        self._clock = clock
        self._lock = threading.Lock()
        self._paused_until = 0.0
        #: Writes dropped since the last one that went through.
        self.dropped = 0

    def after_worker_thread_boot(self, broker: dramatiq.Broker, thread: Any) -> None:
        joblogs.sink.set(self)

    def append(self, job_id: str, attempt: int, line: str) -> None:
        self._write(
            lambda: self.rows.append(
                job_id, attempt, line, max_lines=self.max_lines, timeout_seconds=WRITE_WAIT_SECONDS
            )
        )

    def set_progress(self, job_id: str, progress_json: str) -> None:
        self._write(lambda: self.rows.set_progress(job_id, progress_json, timeout_seconds=WRITE_WAIT_SECONDS))

    def _write(self, write: Callable[[], None]) -> None:
        if self._paused_until and self._clock() < self._paused_until:
            with self._lock:
                self.dropped += 1
            return
        try:
            write()
        except psycopg.Error as exc:  # PoolTimeout included: no connection came in time
            with self._lock:
                self.dropped += 1
                self._paused_until = self._clock() + OUTAGE_PAUSE_SECONDS
                dropped = self.dropped
            logger.warning(
                "Job log lines are dropped for %.0f s (%d so far): the database failed: %s",
                OUTAGE_PAUSE_SECONDS,
                dropped,
                str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__,
                extra={"action": "job_log_dropped", "dropped": dropped},
            )
            return
        if self._paused_until:
            with self._lock:
                dropped, self.dropped, self._paused_until = self.dropped, 0, 0.0
            if dropped:
                logger.info(
                    "Job log lines are written again; %d were dropped.",
                    dropped,
                    extra={"action": "job_log_resumed", "dropped": dropped},
                )


def writer_of(broker: dramatiq.Broker) -> JobLogWriter | None:
    """The job log writer in ``broker``'s middleware, if it has one (a provider with a database)."""
    for middleware in broker.middleware:
        if isinstance(middleware, JobLogWriter):
            return middleware
    return None
