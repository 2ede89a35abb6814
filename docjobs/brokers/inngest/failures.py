"""The function that records the runs Inngest gave up on.

``FAILURE_FUNCTION_ID`` takes Inngest's ``inngest/function.failed`` event: a run Inngest
gave up on without the app seeing its end (its last calls never reached the app, or
their answers never reached Inngest) is marked FAILED with Inngest's error, instead of
staying PENDING or PROCESSING for ever.
"""

from __future__ import annotations

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
from docjobs.registry import JobActor

#: Inngest's system event for a run that failed, and the function docjobs takes it with.
FAILED_EVENT = "inngest/function.failed"
FAILURE_FUNCTION_ID = "docjobs.run-failed"
#: Its retries: enough to outlast a database outage (Inngest's backoff grows to hours).
FAILURE_FUNCTION_RETRIES = 10


def failure_function(
    client: inngest.Inngest, actors: dict[str, JobActor[Any, Any]], recorder: Recorder, app_id: str
) -> inngest.Function[Any]:
    """The function that marks FAILED each run of ``actors`` Inngest gave up on.

    Args:
        client: The app's Inngest client.
        actors: docjobs' actors by name (the functions' ids after ``app_id-``).
        recorder: Writes the FAILED rows (it has a history).
        app_id: The app's id, which prefixes the function ids in Inngest's events.
    """
    return client.create_function(
        fn_id=FAILURE_FUNCTION_ID,
        name="Record the runs Inngest gave up on",
        trigger=inngest.TriggerEvent(event=FAILED_EVENT),
        retries=FAILURE_FUNCTION_RETRIES,
    )(_failure_handler(actors, recorder, app_id))


def _failure_handler(actors: dict[str, JobActor[Any, Any]], recorder: Recorder, app_id: str) -> Any:
    def record_failed_run(ctx: inngest.ContextSync) -> None:
        data = ctx.event.data
        function_id = str(data.get("function_id") or "")
        prefix = f"{app_id}-"
        # Inngest sends every app's failures (this function's own too): only docjobs' jobs are recorded.
        job = actors.get(function_id[len(prefix) :]) if function_id.startswith(prefix) else None
        original = data.get("event")
        if job is None or not isinstance(original, dict):
            return
        payload = dict(original.get("data") or {})
        message_id = str(payload.pop(MESSAGE_ID_FIELD, None) or original.get("id") or data.get("run_id"))
        for field in (RUN_AT_FIELD, OPTIONS_FIELD, ARGS_FIELD):
            payload.pop(field, None)
        error = data.get("error")
        if not isinstance(error, dict):
            error = {}
        reason = f"Inngest gave up on the run: {error.get('name') or 'Error'}: {error.get('message') or ''}"
        message: dramatiq.Message[Any] = dramatiq.Message(
            queue_name=job.queue_name,
            actor_name=job.actor_name,
            args=(),
            kwargs={} if original.get("name") == SCHEDULED_EVENT else payload,
            options={RUN_ID_OPTION: data.get("run_id")},
            message_id=message_id,
        )
        recorder.gave_up(message, reason.strip())

    return record_failed_run
