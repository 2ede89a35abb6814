"""The worker's flow-control gate: a job runs only when its type's limits let it.

Before a job of a type that declares flow control runs, the gate asks the shared
store (PostgreSQL on local, Redis on bullmq):

1. debounce: a later send of the same key exists → the job is dropped; it is
   younger than the period → it waits until the period has passed since its send;
2. concurrency: no slot free for its key → it waits;
3. throttle: its window is full → it waits for the next window;
4. rate limit: its window is full → it is dropped.

A job that waits is sent again with a delay, as a retry is, but without using one of
its retries; one that is dropped ends without running. Both write a log line. On
Inngest the function's own options do all this (``brokers/inngest/functions.py``),
and no gate is installed.
"""

from __future__ import annotations

import hashlib
import logging
import random
import time
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

import dramatiq
from dramatiq.middleware import MiddlewareError, SkipMessage

from docjobs import joblogs
from docjobs.errors import JobLogOutsideJob
from docjobs.flow.limits import NO_FLOW, Concurrency, Debounce, Flow, Limit, RateLimit, Throttle
from docjobs.flow.store import FlowStore, WindowKind

Payload = Mapping[str, Any]

logger = logging.getLogger("docjobs.jobs")

#: The message option counting how often a job waited for its flow control.
WAITS_OPTION = "flow_waits"
#: The attribute a waiting job's message proxy carries, so the history does not take
#: the gate's skip for the job's end.
POSTPONED_ATTRIBUTE = "flow_postponed"
#: A job waiting for a concurrency slot looks again after this, doubling up to the cap.
SLOT_WAIT_SECONDS = 0.25
SLOT_WAIT_CAP_SECONDS = 10.0
#: The attribute a job's proxy carries when the gate held it back or dropped it.
_DECIDED_ATTRIBUTE = "flow_decided"
#: The logger of Dramatiq's worker threads, which warns of every skipped message.
DRAMATIQ_WORKER_LOGGER = "dramatiq.worker.WorkerThread"
#: Where a running job's proxy keeps the key of the slot it holds.
_SLOT_ATTRIBUTE = "_flow_slot"
#: Added to an actor's time limit for how long a slot outlives a killed worker.
SLOT_GRACE_SECONDS = 60.0
#: Dramatiq's TimeLimit default, for actors without their own.
DEFAULT_TIME_LIMIT_MS = 600_000
#: How long a debounced key's latest send is remembered after its period.
DEBOUNCE_MEMORY_SECONDS = 24 * 60 * 60
#: Why a debounced job was dropped.
SUPERSEDED = "a later send of the same key replaced it (debounce)"
#: A waiting job writes its first wait, then every this many, in its own log.
LOG_EVERY_WAITS = 10
#: Failed slot releases kept to retry.
MAX_UNRELEASED = 10_000
#: Key values longer than this are stored by their SHA-256.
MAX_KEY_CHARS = 200


class FlowUnavailable(MiddlewareError):
    """The flow-control store could not be reached: the job's attempt fails, and is retried."""


class FlowWait(Exception):  # noqa: N818 - the reason a job waited, recorded as its attempt's error
    """Why a job waited: recorded on the attempt it did not run."""


def flow_of(broker: dramatiq.Broker, actor_name: str) -> Flow:
    """The flow control ``actor_name`` declares (none for unknown or plain actors)."""
    actor = broker.actors.get(actor_name)
    return getattr(actor, "flow", None) or NO_FLOW


def key_of(limit: Limit, payload: Mapping[str, Any]) -> str:
    """The value of ``limit``'s key in ``payload`` as stored ('' without a key; ``null`` when absent)."""
    if limit.key is None:
        return ""
    value = payload.get(limit.key)
    text = value if isinstance(value, str) else "null" if value is None else repr(value)
    if len(text) > MAX_KEY_CHARS:
        return "sha256:" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    return text


class _LoggedByTheGate(logging.Filter):
    """Drops Dramatiq's "was skipped" warning for a job the gate held back or dropped: the
    gate logs why, and a throttled backlog would otherwise warn once per wait."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        return not (args and getattr(args[0], _DECIDED_ATTRIBUTE, False) is True)


class FlowGate(dramatiq.Middleware):
    """Holds back or drops the jobs their type's flow control does not let run now."""

    def __init__(self, store: FlowStore) -> None:
        self.store = store
        worker_log = logging.getLogger(DRAMATIQ_WORKER_LOGGER)
        if not any(isinstance(f, _LoggedByTheGate) for f in worker_log.filters):
            worker_log.addFilter(_LoggedByTheGate())
        # Slots whose release failed (the store was down when their job ended): freed at the
        # next job that asks the store, so waiting jobs do not wait for the slots to expire.
        self._unreleased: deque[tuple[str, str, str]] = deque(maxlen=MAX_UNRELEASED)
        self._flowing: frozenset[str] = frozenset()
        self._debounced: frozenset[str] = frozenset()
        self._actors_seen = -1

    # Send side: a debounced key remembers its latest send, before the send (a job can
    # then never run before its own note; a note naming a send that failed supersedes
    # nothing on local, where a superseding job's row must exist).

    def before_enqueue(
        self, broker: dramatiq.Broker, message: dramatiq.Message[Any], delay: int | None
    ) -> None:
        if message.actor_name in self._debounced_actors(broker):
            self._note([message], broker)

    def before_enqueue_many(
        self,
        broker: dramatiq.Broker,
        messages: Sequence[dramatiq.Message[Any]],
        delay: int | None,
        *,
        encoded: Sequence[Any] = (),
    ) -> None:
        debounced = self._debounced_actors(broker)
        if debounced:  # a bulk send of other job types costs this one check
            self._note([message for message in messages if message.actor_name in debounced], broker)

    def _note(self, messages: list[dramatiq.Message[Any]], broker: dramatiq.Broker) -> None:
        """Note the last send of each debounced key among ``messages`` (in their order)."""
        last: dict[tuple[str, str], dramatiq.Message[Any]] = {}
        for message in messages:
            if message.options.get(WAITS_OPTION) is not None or message.options.get("retries"):
                continue  # a job sent again (after a wait, a retry) is not a new send
            debounce = flow_of(broker, message.actor_name).debounce
            assert debounce is not None
            last[message.actor_name, key_of(debounce, message.kwargs)] = message
        for (job, key), message in last.items():
            debounce = flow_of(broker, job).debounce
            assert debounce is not None
            try:
                self._note_one(job, key, message, debounce)
            except Exception as exc:
                # Refused, nothing sent: sent without its note, an earlier send would run too.
                raise FlowUnavailable(
                    f"{job}: the send could not be noted for its debounce: {type(exc).__name__}: {exc}"
                ) from exc

    def _note_one(self, job: str, key: str, message: dramatiq.Message[Any], debounce: Debounce) -> None:
        self.store.note_send(
            job,
            key,
            message.message_id,
            sent_ms=message.message_timestamp,
            ttl_s=debounce.period + DEBOUNCE_MEMORY_SECONDS,
        )

    def _debounced_actors(self, broker: dramatiq.Broker) -> frozenset[str]:
        self._refresh(broker)
        return self._debounced

    def _refresh(self, broker: dramatiq.Broker) -> None:
        # Every send and every job asks: recomputed only when an actor was declared since.
        if len(broker.actors) != self._actors_seen:
            flows = {name: getattr(actor, "flow", NO_FLOW) for name, actor in broker.actors.items()}
            self._flowing = frozenset(name for name, flow in flows.items() if flow)
            self._debounced = frozenset(name for name, flow in flows.items() if flow.debounce)
            self._actors_seen = len(broker.actors)

    # Run side.

    def before_process_message(self, broker: dramatiq.Broker, message: dramatiq.MessageProxy) -> None:
        self._refresh(broker)
        if message.actor_name not in self._flowing:
            return  # most jobs: one set lookup
        try:
            # Everything inside: a failure here that were not a MiddlewareError would be logged
            # by the broker and the job run unchecked (second outside trial, issue 22).
            self._release_pending()
            self._admit(broker, message, flow_of(broker, message.actor_name))
        except SkipMessage:
            self._release(message)
            raise
        except Exception as exc:
            # Not run unchecked: the attempt fails and is retried, as when its database is down.
            self._release(message)
            raise FlowUnavailable(
                f"flow control of {message.actor_name} could not be checked: {type(exc).__name__}: {exc}"
            ) from exc

    def _admit(self, broker: dramatiq.Broker, message: dramatiq.MessageProxy, flow: Flow) -> None:
        payload = message.kwargs if isinstance(message.kwargs, Mapping) else {}
        if flow.debounce is not None:
            self._debounce(broker, message, flow.debounce, payload)
        if flow.concurrency is not None:
            self._take_slot(broker, message, flow.concurrency, payload)
        if flow.throttle is not None:
            wait = self._take_window(message, "throttle", flow.throttle, payload)
            if wait is not None:
                self._wait(broker, message, wait, describe(flow.throttle))
        if flow.rate_limit is not None:
            if self._take_window(message, "rate_limit", flow.rate_limit, payload) is not None:
                self._drop(message, describe(flow.rate_limit))

    def _debounce(
        self, broker: dramatiq.Broker, message: dramatiq.MessageProxy, debounce: Debounce, payload: Payload
    ) -> None:
        key, sent_ms = key_of(debounce, payload), message.message_timestamp
        if self.store.superseded(message.actor_name, key, message.message_id, sent_ms=sent_ms):
            self._drop(message, SUPERSEDED)
        due = sent_ms / 1000 + debounce.period
        if time.time() < due:
            self._wait(
                broker, message, due - time.time(), f"debounce: it runs {debounce.period:g} s after its send"
            )

    def _take_slot(
        self, broker: dramatiq.Broker, message: dramatiq.MessageProxy, limit: Concurrency, payload: Payload
    ) -> None:
        key = key_of(limit, payload)
        ttl = _time_limit_s(broker, message.actor_name) + SLOT_GRACE_SECONDS
        if not self.store.take_slot(
            message.actor_name, key, message.message_id, limit=limit.limit, ttl_s=ttl
        ):
            waits = int(message.options.get(WAITS_OPTION, 0))
            backoff = min(SLOT_WAIT_SECONDS * 2 ** min(waits, 10), SLOT_WAIT_CAP_SECONDS)
            self._wait(broker, message, backoff, describe(limit))
        message.__dict__[_SLOT_ATTRIBUTE] = key

    def _take_window(
        self, message: dramatiq.MessageProxy, kind: WindowKind, limit: Throttle | RateLimit, payload: Payload
    ) -> float | None:
        key = key_of(limit, payload)
        return self.store.take_window(message.actor_name, kind, key, limit=limit.limit, period_s=limit.period)

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: dramatiq.MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        self._release(message)

    def after_skip_message(self, broker: dramatiq.Broker, message: dramatiq.MessageProxy) -> None:
        self._release(message)

    def _release(self, message: dramatiq.MessageProxy) -> None:
        key = message.__dict__.pop(_SLOT_ATTRIBUTE, None)
        if key is None:
            return
        slot = (message.actor_name, key, message.message_id)
        try:
            self.store.release_slot(*slot)
        except Exception as exc:  # noqa: BLE001 - freed by the next job here, or when it expires
            self._unreleased.append(slot)
            logger.warning(
                "Job %s (%s): its concurrency slot could not be freed (%s: %s); the next job tries again.",
                message.message_id,
                message.actor_name,
                type(exc).__name__,
                exc,
            )

    def _release_pending(self) -> None:
        """Free the slots whose release failed; worker threads call it at once, so each slot
        is taken off the deque (atomic) before it is freed, and put back if that fails."""
        while True:
            try:
                slot = self._unreleased.popleft()
            except IndexError:
                return
            try:
                self.store.release_slot(*slot)
            except Exception:  # noqa: BLE001 - still down: the check that follows says so
                self._unreleased.appendleft(slot)
                return

    def _wait(
        self, broker: dramatiq.Broker, message: dramatiq.MessageProxy, seconds: float, why: str
    ) -> None:
        """Send the job again after ``seconds`` (a little jitter), keeping its retries; skip this run."""
        delay_ms = max(int(seconds * 1000 * random.uniform(1.0, 1.1)), 1)
        message.options[WAITS_OPTION] = int(message.options.get(WAITS_OPTION, 0)) + 1
        message.stuff_exception(FlowWait(f"waited {delay_ms} ms for its flow control ({why})"))
        message.__dict__[POSTPONED_ATTRIBUTE] = message.__dict__[_DECIDED_ATTRIBUTE] = True
        waits = message.options[WAITS_OPTION]
        if waits == 1 or waits % LOG_EVERY_WAITS == 0:
            _job_log(f"waits for its flow control ({why}); {waits} wait(s) so far, the last {delay_ms} ms")
        logger.debug(
            "Job %s (%s) waits %d ms: %s.",
            message.message_id,
            message.actor_name,
            delay_ms,
            why,
            extra={"action": "job_flow_wait", "message_id": message.message_id},
        )
        broker.enqueue(message, delay=delay_ms)  # type: ignore[arg-type]  # a proxy, as Retries sends
        raise SkipMessage(why)

    def _drop(self, message: dramatiq.MessageProxy, why: str) -> None:
        message.__dict__[_DECIDED_ATTRIBUTE] = True
        _job_log(f"dropped without running: {why}")
        logger.info(
            "Job %s (%s) dropped without running: %s.",
            message.message_id,
            message.actor_name,
            why,
            extra={"action": "job_flow_dropped", "message_id": message.message_id},
        )
        raise SkipMessage(why)


def _job_log(line: str) -> None:
    """A line in the job's own log (its board page), where the gate's decisions show."""
    try:
        joblogs.log_line(line)
    except JobLogOutsideJob:
        pass  # a gate called outside a worker (tests): the process log has the line


def describe(limit: Concurrency | Throttle | RateLimit) -> str:
    """The limit as a log line names it ("throttle: 2 per 1 s per tag")."""
    per = f" per {limit.key}" if limit.key is not None else ""
    if isinstance(limit, Concurrency):
        return f"concurrency: at most {limit.limit} running{per}"
    kind = "throttle" if isinstance(limit, Throttle) else "rate limit"
    return f"{kind}: {limit.limit} per {limit.period:g} s{per}"


def _time_limit_s(broker: dramatiq.Broker, actor_name: str) -> float:
    actor = broker.actors.get(actor_name)
    options = getattr(actor, "options", {}) or {}
    return float(options.get("time_limit", DEFAULT_TIME_LIMIT_MS)) / 1000
