"""The stub provider: queues in memory, for unit-testing jobs without PostgreSQL or Redis.

Dramatiq's ``StubBroker`` (its queues, ``join``, ``flush``, ``dead_letters``) under
docjobs' middleware: payloads are checked at send, retries follow docjobs' policy,
``run_task`` memoises its steps in memory, and ``jobs.trigger(id=)`` drops a second
send of an id, as on the other providers. What needs a database, sending inside the
caller's transaction (``conn=``) and the board's actions, it refuses. Build it with
:func:`docjobs.testing.stub_runtime`; run its jobs with a ``dramatiq.Worker``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Self

import dramatiq
import psycopg
from dramatiq.brokers.stub import StubBroker as DramatiqStubBroker

from docjobs import errors
from docjobs.brokers import base

if TYPE_CHECKING:
    from docjobs.settings import Settings

#: Workers only: no database, so no transactional send, pause, cancel or board retry.
STUB_CAPABILITIES = base.Capabilities(
    workers=True,
    scheduler=False,
    served=False,
    transactional_send=False,
    pause=False,
    cancel=False,
    run_now=False,
    join=True,
    flush=True,
    retry_in_place=False,
    bulk_by_filter=False,
)


class StubBroker(base.Broker, DramatiqStubBroker):
    """Dramatiq's in-memory broker as a docjobs provider.

    Args:
        middleware: The stack (``brokers.middleware.default_middleware``).
        fail_fast_default: ``join`` raises the error of a job that ended in
            ``dead_letters`` (Dramatiq's default); pass ``fail_fast=False`` to
            ``join`` to only wait.
    """

    name: ClassVar[base.ProviderName] = "stub"

    def __init__(
        self, middleware: list[dramatiq.Middleware] | None = None, *, fail_fast_default: bool = True
    ) -> None:
        super().__init__(middleware=middleware, fail_fast_default=fail_fast_default)
        self._sent_ids: set[str] = set()
        self._sent_ids_lock = threading.Lock()

    @classmethod
    def capabilities_for(cls, settings: Settings) -> base.Capabilities:
        """The same whatever the settings: see :data:`STUB_CAPABILITIES`."""
        return STUB_CAPABILITIES

    @property
    def capabilities(self) -> base.Capabilities:
        """See :data:`STUB_CAPABILITIES`."""
        return STUB_CAPABILITIES

    @classmethod
    def from_settings(cls, settings: Settings, parts: base.SharedParts) -> Self:
        """A stub over the factory's middleware; it keeps nothing in the database."""
        return cls(middleware=parts.middleware)

    def enqueue(
        self,
        message: dramatiq.Message[Any],
        *,
        delay: int | None = None,
        conn: psycopg.Connection[Any] | None = None,
    ) -> dramatiq.Message[Any]:
        """Put ``message`` on its queue (its delay queue with ``delay`` ms).

        Raises:
            errors.NotSupportedError: ``conn`` is given: the stub has no database.
        """
        _refuse_transaction(conn)
        sent = DramatiqStubBroker.enqueue(self, message, delay=delay)
        with self._sent_ids_lock:
            self._sent_ids.add(message.message_id)
        return sent

    def enqueue_many(
        self,
        messages: Sequence[dramatiq.Message[Any]],
        *,
        delay: int | None = None,
        conn: psycopg.Connection[Any] | None = None,
        deduplicate: bool = True,
    ) -> int:
        """Enqueue each message; with ``deduplicate``, one whose id was sent before is dropped.

        Raises:
            errors.NotSupportedError: ``conn`` is given: the stub has no database.
        """
        _refuse_transaction(conn)
        sent = 0
        for message in messages:
            if deduplicate and not self._claim_id(message.message_id):
                continue
            try:
                self.enqueue(message, delay=delay)
            except BaseException:
                with self._sent_ids_lock:  # refused at send: the id stays free
                    self._sent_ids.discard(message.message_id)
                raise
            sent += 1
        return sent

    def _claim_id(self, message_id: str) -> bool:
        """Take ``message_id`` for one send; ``False`` if it was sent before."""
        with self._sent_ids_lock:
            if message_id in self._sent_ids:
                return False
            self._sent_ids.add(message_id)
            return True

    def flush_all(self) -> None:
        """Drop every waiting message and dead letter, and forget the ids sent."""
        DramatiqStubBroker.flush_all(self)
        with self._sent_ids_lock:
            self._sent_ids.clear()


class MemoryTasks:
    """``run_task``'s rows in memory (``tasks.TaskRows``), so memoised steps work under the stub."""

    def __init__(self) -> None:
        self._rows: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def get_or_create(self, *, task_id: str, job_id: str, actor: str, name: str) -> dict[str, Any]:
        """A task's ``status``, ``result``, ``retried`` and ``last_error``, creating it on first use."""
        with self._lock:
            row = self._rows.setdefault(
                task_id, {"status": "PENDING", "result": None, "retried": 0, "last_error": None}
            )
            return dict(row)

    def complete(self, task_id: str, result_json: str) -> None:
        """Store a task's result, as the database would (parsed from its JSON)."""
        with self._lock:
            self._rows[task_id].update(status="COMPLETED", result=json.loads(result_json))

    def record_failure(self, task_id: str, error: str) -> None:
        """Count a failed run of a task and keep its error line."""
        with self._lock:
            row = self._rows[task_id]
            row.update(retried=row["retried"] + 1, last_error=error)


def _refuse_transaction(conn: psycopg.Connection[Any] | None) -> None:
    if conn is not None:
        raise errors.NotSupportedError(
            "the stub provider cannot send inside a database transaction (conn=): it has no database"
        )
