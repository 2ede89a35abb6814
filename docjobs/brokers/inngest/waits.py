"""Where a run waits before its job starts: until its delay is over, and while its queue is paused.

Both waits are Inngest steps, so a run that waits costs no process: Inngest calls the
function again when the wait ends.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

import inngest
import psycopg

from docjobs.brokers.inngest.events import MESSAGE_ID_FIELD, PROMOTE_EVENT, QUEUE_FIELD, RESUME_EVENT

logger = logging.getLogger(__name__)

#: The shortest wait for an event Inngest accepts.
MIN_WAIT = timedelta(seconds=1)
#: How long a run held by a paused queue waits for the resume event before it looks again.
PAUSED_RECHECK = timedelta(minutes=1)
#: How long a function call trusts the paused queues it read (a pause takes this long to bite).
PAUSED_CACHE_SECONDS = 1.0


class PausedCheck(Protocol):
    """Is this queue paused? ``fresh`` asks past any cache."""

    def __call__(self, queue: str, *, fresh: bool = False) -> bool: ...


class PausedQueues:
    """The queues paused on the board, read at most once a second.

    Args:
        read: Reads the paused queues (``JobStore.queues.paused_queues``).
    """

    def __init__(self, read: Callable[[], frozenset[str]]) -> None:
        self.read = read
        self._lock = threading.Lock()
        self._queues: frozenset[str] = frozenset()
        self._read_at = -math.inf

    def __call__(self, queue: str, *, fresh: bool = False) -> bool:
        with self._lock:
            if fresh or time.monotonic() - self._read_at > PAUSED_CACHE_SECONDS:
                try:
                    self._queues = self.read()
                except psycopg.Error as exc:
                    # A database blip must not fail the job (Inngest would spend an attempt):
                    # the last state read stands until the next read succeeds.
                    logger.warning("Could not read the paused queues, using the last read: %s", exc)
                self._read_at = time.monotonic()
            return queue in self._queues


def wait_until_due(ctx: inngest.ContextSync, run_at: datetime) -> None:
    """Wait until ``run_at``, or until the board's "run it now" event for this job.

    Inngest waits for an event a whole number of seconds, at least one: a shorter
    delay (counted from the send, so every call of the run takes the same kind of
    step) is a plain sleep.
    """
    sent_ms = ctx.event.ts or int(datetime.now(UTC).timestamp() * 1000)
    if run_at - datetime.fromtimestamp(sent_ms / 1000, UTC) < MIN_WAIT:
        ctx.step.sleep_until("delay", run_at)
        return
    ctx.step.wait_for_event(
        "delay",
        event=PROMOTE_EVENT,
        if_exp=f"event.data.{MESSAGE_ID_FIELD} == async.data.{MESSAGE_ID_FIELD}",
        # Inngest takes whole seconds: the job may start up to a second late.
        timeout=timedelta(seconds=max(math.ceil((run_at - datetime.now(UTC)).total_seconds()), 1)),
    )


def hold_while_paused(ctx: inngest.ContextSync, queue: str, paused: PausedCheck) -> None:
    """Wait while ``queue`` is paused on the board, before the job starts (or between two steps).

    The state is read on each call, not in a step: a run resumed and paused
    again waits again, under a new step id, and a call that finds the queue
    running passes by the waits it memoised earlier.
    """
    rounds = 0
    resumed = False
    while paused(queue, fresh=resumed):  # after a resume event, not what was read before it
        resumed = None is not ctx.step.wait_for_event(
            f"paused-{rounds}",
            event=RESUME_EVENT,
            if_exp=f"async.data.{QUEUE_FIELD} == {json.dumps(queue)}",
            timeout=PAUSED_RECHECK,
        )
        rounds += 1
