"""A job type's flow control on Inngest: the function's own options, and what its handler adds.

Inngest honours the options itself, before a run starts, so no docjobs gate runs on
this provider (:class:`HandlerFlow` covers the two whose dropped jobs it must close).
Keys become expressions over the event's data, where a job's payload fields are.
docjobs' priority (lower runs first, as Dramatiq's) becomes Inngest's priority
expression: the seconds a run is moved ahead of others, within its ±600.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import dramatiq
import inngest

from docjobs.db.flow import FlowRows
from docjobs.db.history import HistoryStore
from docjobs.flow.gate import SUPERSEDED, describe, key_of
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


class HandlerFlow:
    """The flow control a function's handler applies itself: Inngest drops what a rate limit or
    a debounce holds back without a call, so those jobs' history would stay open.

    - A rate limit is counted in PostgreSQL (``flow_window``, as on local) when the app has a
      database: a run over it ends at once, recorded as dropped. Without one Inngest's own
      ``rateLimit`` applies (there is no history to close).
    - A debounce stays Inngest's; the run it lets through closes, as dropped, the same
      key's jobs sent before it.

    Both decisions are steps: Inngest calls a function again for each of its steps, and a
    later call must not decide again.
    """

    def __init__(self, rows: FlowRows | None, history: HistoryStore | None) -> None:
        self.rows = rows
        self.history = history

    def options(self, job: JobActor[Any, Any]) -> dict[str, Any]:
        """The function's own options (its rate limit only when this handler cannot count it)."""
        options = function_options(job)
        if self.rows is not None:
            options.pop("rate_limit", None)
        return options

    def dropped_by(
        self, ctx: inngest.ContextSync, job: JobActor[Any, Any], message: dramatiq.Message[Any]
    ) -> str | None:
        """Why this run is dropped without running (its rate limit is reached), or None."""
        rate, rows = job.flow.rate_limit, self.rows
        if rate is None or rows is None:
            return None
        key = key_of(rate, message.kwargs)

        def take() -> bool:
            return (
                rows.take_window(job.actor_name, "rate_limit", key, limit=rate.limit, period_s=rate.period)
                is None
            )

        admitted: bool = ctx.step.run("docjobs-rate-limit", take)
        return None if admitted else describe(rate)

    def close_superseded(
        self, ctx: inngest.ContextSync, job: JobActor[Any, Any], message: dramatiq.Message[Any]
    ) -> None:
        """Close the jobs of the same debounced key sent before this run's (Inngest dropped them)."""
        debounce, history = job.flow.debounce, self.history
        if debounce is None or history is None:
            return
        value = message.kwargs.get(debounce.key) if debounce.key is not None else None
        text = value if isinstance(value, str) or value is None else json.dumps(value)

        def close() -> int:
            return history.close_superseded(
                message.message_id, job.actor_name, debounce.key, text, SUPERSEDED
            )

        ctx.step.run("docjobs-debounce", close)
