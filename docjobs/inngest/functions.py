"""docjobs' actors as Inngest functions of one app.

Each actor becomes the function ``<job id>`` triggered by the event of the same
name (and, for scheduled jobs, by its cron expression from the scheduler's table).
The function validates the event's payload, runs the actor with ``run_task``
mapped to ``step.run`` (a step finished before a failure is memoised by Inngest
and not run again), and turns docjobs' final failures (a bad payload, a job
abandoned) into ``NonRetriableError``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import dramatiq
import inngest
from dramatiq.middleware import CurrentMessage

from docjobs import tasks
from docjobs.brokers.middleware import NON_RETRYABLE
from docjobs.registry import JobActor
from docjobs.scheduler.table import CronTable

logger = logging.getLogger("docjobs.jobs")

#: Event fields docjobs adds beside the payload.
MESSAGE_ID_FIELD = "messageId"
RUN_AT_FIELD = "runAt"


def build_functions(
    client: inngest.Inngest,
    actors: Iterable[JobActor[Any, Any]],
    *,
    cron: CronTable,
    default_retries: int,
) -> list[inngest.Function[Any]]:
    """One function per actor, with its event trigger, its cron trigger if scheduled, and its retries."""
    functions = []
    for job in sorted(actors, key=lambda actor: actor.actor_name):
        triggers: list[inngest.TriggerEvent | inngest.TriggerCron] = [
            inngest.TriggerEvent(event=job.actor_name)
        ]
        schedule = cron.get(job.actor_name)
        if schedule is not None and schedule.enabled:
            zone = cron.timezone.key
            prefix = "" if zone == "UTC" else f"TZ={zone} "  # Inngest's time-zone prefix
            triggers.append(inngest.TriggerCron(cron=f"{prefix}{schedule.expression}"))
        retries = int(job.options.get("max_retries", default_retries))
        functions.append(
            client.create_function(
                fn_id=job.actor_name, name=job.display_name, trigger=triggers, retries=retries
            )(_handler(job))
        )
    return functions


def _handler(job: JobActor[Any, Any]) -> Any:
    def run(ctx: inngest.ContextSync) -> Any:
        data = dict(ctx.event.data)
        message_id = str(data.pop(MESSAGE_ID_FIELD, None) or ctx.event.id or ctx.run_id)
        run_at = data.pop(RUN_AT_FIELD, None)
        if isinstance(run_at, str):
            ctx.step.sleep_until("delay", datetime.fromisoformat(run_at))
        if ctx.event.name == "inngest/scheduled.timer":
            data = {}
        # Actors may ask for their message (its id, its attempt) as on the other providers.
        message: dramatiq.Message[Any] = dramatiq.Message(
            queue_name=job.queue_name,
            actor_name=job.actor_name,
            args=(),
            kwargs=data,
            options={"retries": ctx.attempt},
            message_id=message_id,
        )
        step_token = tasks.inngest_step.set(ctx.step)
        message_token = CurrentMessage._MESSAGE.set(message)
        try:
            return job(**data)
        except NON_RETRYABLE as exc:
            raise inngest.NonRetriableError(f"{type(exc).__name__}: {exc}") from exc
        finally:
            CurrentMessage._MESSAGE.reset(message_token)
            tasks.inngest_step.reset(step_token)

    run.__name__ = job.fn.__name__
    return run
