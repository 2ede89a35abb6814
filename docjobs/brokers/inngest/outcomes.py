"""What a worker does around a job that an Inngest function does itself: message options and outcome hooks.

On the other providers Dramatiq's worker runs every middleware hook. Inngest runs
the job by calling the app, retries on its own terms and counts its own attempts,
so a function runs only the hooks that decide or follow a job's outcome:

- ``AgeLimit`` before the job starts: a message older than its ``max_age`` is
  skipped and recorded FAILED, as a worker skips it;
- ``Callbacks``, ``Pipelines`` and ``Results`` once the job has ended (success, or
  a failure Inngest will not retry);
- never ``Retries``: Inngest retries, bounded by the message's ``max_retries``
  (:func:`retries_of`), and ``Retry(delay=)`` becomes Inngest's ``RetryAfterError``.

Inngest may call a function again after its last call ran (an answer lost on the
way), so the hooks may run twice for one run. What they send is keyed on the run's
message: a callback's message id is derived from the job's (:class:`FollowUpIds`),
a pipeline's next message carries its own fixed id, and Inngest drops an event
whose id it has seen, so a follow-up is sent once. Results are stored by message
id, so a second store writes the same value.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import dramatiq
from dramatiq.middleware import AgeLimit, Callbacks, Pipelines, SkipMessage
from dramatiq.results import Results

#: The hooks that follow a job's end, in the order a worker runs them.
FOLLOW_UP_MIDDLEWARE = (Callbacks, Pipelines, Results)

#: Namespace of the ids of the messages a job's outcome sends.
_FOLLOW_UP_NAMESPACE = uuid.UUID("5b0f7f4e-9a6c-4a8e-9a51-6f3d3c1e7d19")


class FollowUpIds:
    """The ids of the messages sent while one job's outcome hooks run, the same on every call.

    Args:
        parent: The id of the job's message.
    """

    def __init__(self, parent: str) -> None:
        self.parent = parent
        self._count = 0

    def next(self) -> str:
        """The id of the next message sent (the n-th send of these hooks gets the n-th id)."""
        self._count += 1
        return str(uuid.uuid5(_FOLLOW_UP_NAMESPACE, f"{self.parent}/{self._count}"))


#: Set while a function's callbacks run: the broker gives their messages these ids.
follow_up_ids: ContextVar[FollowUpIds | None] = ContextVar("docjobs_inngest_follow_up_ids", default=None)


def retries_of(message: dramatiq.Message[Any], function_retries: int) -> int:
    """The retries the message may have: its own ``max_retries``, at most its function's.

    The send refuses a message asking for more than its function's (see
    ``InngestBroker``), since Inngest stops retrying at the function's count.
    """
    asked = message.options.get("max_retries")
    return function_retries if asked is None else min(int(asked), function_retries)


class Outcomes:
    """The outcome hooks of the broker's middleware, run for one function call.

    Args:
        broker: The broker the actors are declared on (its middleware stack), or
            None to run no hook.
    """

    def __init__(self, broker: dramatiq.Broker | None) -> None:
        self.broker = broker

    def age_limited(self, proxy: dramatiq.MessageProxy) -> bool:
        """Whether the message, or its actor, has a ``max_age`` that ``AgeLimit`` applies."""
        if self.broker is None or not self._of(AgeLimit):
            return False
        actor = self.broker.actors.get(proxy.actor_name)
        return bool(proxy.options.get("max_age") or (actor is not None and actor.options.get("max_age")))

    def too_old(self, proxy: dramatiq.MessageProxy) -> bool:
        """Whether ``AgeLimit`` skips the message (it is then marked failed, as on a worker)."""
        for middleware in self._of(AgeLimit):
            try:
                middleware.before_process_message(self.broker, proxy)
            except SkipMessage:
                return True
        return False

    def skipped(self, proxy: dramatiq.MessageProxy) -> None:
        """A skipped message: ``Results`` stores nothing for a failed skip (as on a worker)."""
        for middleware in self._of(Results):
            middleware.after_skip_message(self.broker, proxy)

    def succeeded(self, proxy: dramatiq.MessageProxy, result: Any) -> None:
        """Send the callbacks and the pipeline's next message, store the result."""
        self._after(proxy, result=result)

    def failed(self, proxy: dramatiq.MessageProxy, exception: BaseException) -> None:
        """A failure Inngest will not retry: the ``on_failure`` callback, the stored exception."""
        proxy.fail()
        proxy.stuff_exception(exception)
        self._after(proxy, exception=exception)
        for middleware in self._of(Results):
            middleware.after_nack(self.broker, proxy)

    def _after(self, proxy: dramatiq.MessageProxy, **outcome: Any) -> None:
        for middleware in self._of(*FOLLOW_UP_MIDDLEWARE):
            with self._keyed(proxy, isinstance(middleware, Callbacks)):
                middleware.after_process_message(self.broker, proxy, **outcome)

    @contextmanager
    def _keyed(self, proxy: dramatiq.MessageProxy, keyed: bool) -> Iterator[None]:
        # Only callbacks need it: a pipeline's next message has its own id already,
        # which its results are looked up by.
        token = follow_up_ids.set(FollowUpIds(proxy.message_id)) if keyed else None
        try:
            yield
        finally:
            if token is not None:
                follow_up_ids.reset(token)

    def _of(self, *kinds: type[dramatiq.Middleware]) -> list[Any]:
        if self.broker is None:
            return []
        return [middleware for middleware in self.broker.middleware if isinstance(middleware, kinds)]
