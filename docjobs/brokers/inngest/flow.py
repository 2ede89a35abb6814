"""A job type's flow control as its Inngest function's own options.

Inngest honours them itself, before a run starts, so no docjobs gate runs on this
provider. Keys become expressions over the event's data, where a job's payload
fields are. docjobs' priority (lower runs first, as Dramatiq's) becomes Inngest's
priority expression: the seconds a run is moved ahead of others, within its ±600.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import inngest

from docjobs.flow.limits import Flow
from docjobs.registry import JobActor

#: Inngest's bound on the seconds a priority expression may move a run.
MAX_PRIORITY_SECONDS = 600


def function_options(job: JobActor[Any, Any]) -> dict[str, Any]:
    """The ``create_function`` options that carry ``job``'s flow control and priority."""
    flow: Flow = job.flow
    options: dict[str, Any] = {}
    if flow.concurrency is not None:
        options["concurrency"] = [
            inngest.Concurrency(limit=flow.concurrency.limit, key=_key(flow.concurrency.key))
        ]
    if flow.throttle is not None:
        options["throttle"] = inngest.Throttle(
            limit=flow.throttle.limit, period=_period(flow.throttle.period), key=_key(flow.throttle.key)
        )
    if flow.rate_limit is not None:
        options["rate_limit"] = inngest.RateLimit(
            limit=flow.rate_limit.limit, period=_period(flow.rate_limit.period), key=_key(flow.rate_limit.key)
        )
    if flow.debounce is not None:
        debounce = flow.debounce
        options["debounce"] = inngest.Debounce(period=_period(debounce.period), key=_key(debounce.key))
    if job.priority:
        seconds = max(-MAX_PRIORITY_SECONDS, min(MAX_PRIORITY_SECONDS, -job.priority))
        options["priority"] = inngest.Priority(run=str(seconds))
    return options


def _key(alias: str | None) -> str | None:
    return None if alias is None else f"event.data.{alias}"


def _period(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)
