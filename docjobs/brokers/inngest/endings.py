"""The function that closes the history of the runs Inngest ended without the app seeing their end.

``ENDED_FUNCTION_ID`` takes two of Inngest's system events, which carry the run's
``function_id``, ``run_id``, original ``event`` and ``error``:

- ``inngest/function.cancelled``: a run cancelled in Inngest's dashboard or API, by
  a ``cancel`` event (the board's), or by the function's ``timeouts``. Its job ends
  CANCELLED, with ``cancelled in Inngest`` or, when the run outlived one of the
  limits given to :func:`ended_function`, ``timed out in Inngest after <limit>``.
  Inngest drops what a cancelled run's call answers later, and so does the history
  (``job_record_history`` leaves a CANCELLED row alone).
- ``inngest/function.failed``: a run Inngest gave up on (its last calls never reached
  the app, or their answers never reached Inngest). Its job ends FAILED with
  ``Inngest gave up on the run: <Inngest's error>``. Older Inngest versions send this
  event for a cancelled run too, with the error ``function cancelled``: that is a
  cancellation.

Only an open job (PENDING or PROCESSING) is closed: a repeated or late event, or one
for a job that ended on its own, changes nothing. Events of other apps' functions,
of functions that are not docjobs' jobs, and of jobs without a row are ignored with
a debug line. These events reach the app like any call: signed, fresh, used once,
and only to the function they start (``serve``), so a forged or replayed one closes
nothing; Inngest keeps the ``inngest/`` prefix for its own events.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import dramatiq
import inngest

from docjobs.brokers.inngest.events import (
    ARGS_FIELD,
    MESSAGE_ID_FIELD,
    OPTIONS_FIELD,
    RUN_AT_FIELD,
    RUN_ID_OPTION,
    SCHEDULED_EVENT,
)
from docjobs.brokers.inngest.recorder import Recorder
from docjobs.db.history import JobStanding
from docjobs.registry import JobActor

logger = logging.getLogger(__name__)

#: Inngest's system events for a run that failed and for one that was cancelled.
FAILED_EVENT = "inngest/function.failed"
CANCELLED_EVENT = "inngest/function.cancelled"
#: The function docjobs takes them with.
ENDED_FUNCTION_ID = "docjobs.run-ended"
#: Its retries: enough to outlast a database outage (Inngest's backoff grows to hours).
ENDED_FUNCTION_RETRIES = 10
#: The error Inngest gives a cancelled run.
CANCELLED_MESSAGE = "function cancelled"
#: Calls that wait for a job's row before the event is ignored: the sender writes its
#: row a moment after the send, and Inngest may cancel or give up sooner.
UNRECORDED_ATTEMPTS = 3
#: A cancellation this close to a limit is the limit's: the job's recorded start is
#: a little after Inngest's, and the two clocks differ.
TIMEOUT_MARGIN = timedelta(seconds=1)


@dataclass(frozen=True)
class EndedRun:
    """A run of one of docjobs' jobs, as Inngest's system event tells of its end."""

    job: JobActor[Any, Any]
    message: dramatiq.Message[Any]
    cancelled: bool
    error: str
    #: When Inngest ended it (the event's ``ts``).
    at: datetime


def ended_function(
    client: inngest.Inngest,
    actors: Mapping[str, JobActor[Any, Any]],
    recorder: Recorder,
    app_id: str,
    timeouts: Mapping[str, inngest.Timeouts] | None = None,
) -> inngest.Function[Any]:
    """The function that closes each run of ``actors`` Inngest cancelled or gave up on.

    Args:
        client: The app's Inngest client.
        actors: docjobs' actors by name (the functions' ids after ``app_id-``).
        recorder: Writes the rows (it has a history).
        app_id: The app's id, which prefixes the function ids in Inngest's events.
        timeouts: The ``timeouts`` of the actors' functions, by actor name, so that
            a cancellation at one of them is told as a time-out.
    """
    return client.create_function(
        fn_id=ENDED_FUNCTION_ID,
        name="Close the history of runs Inngest ended",
        trigger=[inngest.TriggerEvent(event=CANCELLED_EVENT), inngest.TriggerEvent(event=FAILED_EVENT)],
        retries=ENDED_FUNCTION_RETRIES,
    )(_handler(actors, recorder, app_id, dict(timeouts or {})))


class _NotRecordedYet(Exception):
    """The job has no row yet: Inngest calls again, by when its sender has written it."""


def _handler(
    actors: Mapping[str, JobActor[Any, Any]],
    recorder: Recorder,
    app_id: str,
    timeouts: dict[str, inngest.Timeouts],
) -> Any:
    def close_ended_run(ctx: inngest.ContextSync) -> None:
        ended = ended_run(ctx.event, actors, app_id)
        if ended is None:
            logger.debug("Ignored %s: not a run of one of docjobs' jobs.", ctx.event.name)
            return
        message_id = ended.message.message_id
        standing = recorder.standing(message_id)
        if standing is None:
            if ctx.attempt + 1 < UNRECORDED_ATTEMPTS:
                raise _NotRecordedYet(f"job {message_id} has no row yet")
            logger.debug("Ignored %s of job %s: no such job.", ctx.event.name, message_id)
            return
        if ended.cancelled:
            limits = timeouts.get(ended.job.actor_name)
            reason = _timed_out(standing, ended.at, limits) or "cancelled in Inngest"
            recorder.closed(ended.message, "CANCELLED", reason)
        else:
            recorder.closed(ended.message, "FAILED", f"Inngest gave up on the run: {ended.error}")

    return close_ended_run


def ended_run(event: inngest.Event, actors: Mapping[str, JobActor[Any, Any]], app_id: str) -> EndedRun | None:
    """The run a ``function.cancelled`` or ``function.failed`` event ends (``None``: not a job's)."""
    data = event.data
    function_id = str(data.get("function_id") or "")
    prefix = f"{app_id}-"
    # Inngest sends every app's events (this function's own too): only docjobs' jobs count.
    job = actors.get(function_id[len(prefix) :]) if function_id.startswith(prefix) else None
    original = data.get("event")
    if job is None or not isinstance(original, dict):
        return None
    payload = dict(original.get("data") or {})
    message_id = str(payload.pop(MESSAGE_ID_FIELD, None) or original.get("id") or data.get("run_id"))
    for field in (RUN_AT_FIELD, OPTIONS_FIELD, ARGS_FIELD):
        payload.pop(field, None)
    error = data.get("error")
    if not isinstance(error, dict):
        error = {}
    name, text = str(error.get("name") or "Error"), str(error.get("message") or "")
    message: dramatiq.Message[Any] = dramatiq.Message(
        queue_name=job.queue_name,
        actor_name=job.actor_name,
        args=(),
        kwargs={} if original.get("name") == SCHEDULED_EVENT else payload,
        options={RUN_ID_OPTION: data.get("run_id")},
        message_id=message_id,
    )
    cancelled = event.name == CANCELLED_EVENT or text == CANCELLED_MESSAGE
    at = datetime.fromtimestamp(event.ts / 1000, UTC) if event.ts else datetime.now(UTC)
    return EndedRun(job, message, cancelled, f"{name}: {text}".strip(), at)


def _timed_out(standing: JobStanding, at: datetime, limits: inngest.Timeouts | None) -> str | None:
    """Why a run cancelled at ``at`` ended, if one of its ``timeouts`` explains it."""
    if limits is None:
        return None
    finish, start = _duration(limits.finish), _duration(limits.start)
    started, sent = standing.started_at, standing.submitted_at
    if finish is not None and started is not None and at - started + TIMEOUT_MARGIN >= finish:
        return f"timed out in Inngest after {_shown(finish)} (its timeouts.finish)"
    if start is not None and started is None and at - sent + TIMEOUT_MARGIN >= start:
        return f"timed out in Inngest: not started within {_shown(start)} (its timeouts.start)"
    return None


def _duration(value: int | timedelta | None) -> timedelta | None:
    """A limit as the SDK takes it: milliseconds or a timedelta."""
    return timedelta(milliseconds=value) if isinstance(value, int) else value


def _shown(limit: timedelta) -> str:
    seconds = limit.total_seconds()
    return f"{seconds:g}s"
