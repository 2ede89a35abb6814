"""The bullmq provider's broker: Dramatiq's ``RedisBroker``, namespaced and recoverable.

What docjobs changes, keeping Dramatiq's keys and data layout (and its Lua script
for fetches, nacks, requeues and maintenance), so stock ``dramatiq`` tools and
brokers with the same namespace interoperate:

- keys live under ``NEXT_PRIVATE_REDIS_PREFIX`` (two prefixes never see each other's
  jobs, and each has its own doorbell);
- every send rings the doorbell in its enqueue script (``enqueue.lua``, one call),
  and idle consumers wait on it instead of polling with a backoff (see ``doorbell``);
- consumers send their acks in batches with their next fetch (see ``consumer``),
  behind the history events of the jobs they acknowledge (see ``journal``);
- a delayed job waits in Redis, in a sorted set by due time (``schedule.lua``), not
  in a worker's memory as Dramatiq's delay queue has it: each worker's delay-queue
  consumer moves due jobs to their queue (``move_due.lua``, atomic, so once), and
  the board can run a delayed job now or take it out while workers run. Jobs put
  on a ``.DQ`` list by stock Dramatiq senders are still consumed the stock way;
- recovery is deterministic: Dramatiq runs maintenance on a random 0.1 % of
  commands, so a dead worker's jobs come back "after about a thousand more
  commands"; here each worker process's keeper heartbeats and runs maintenance on
  every queue every few seconds, so a killed worker's jobs run again within the
  heartbeat timeout plus one keeper round;
- a job sent with an id of the caller's (``jobs.trigger(..., id=...)``) is enqueued
  only if it takes its id's key in the enqueue script (SET NX, atomic), as the local
  provider's primary key does: a second send of that id is a no-op while the first
  job waits or runs, and for the retention period after it ends (when its row in
  ``background_job`` is deleted by retention too). Generated ids take no key;
- a job sent with ``conn=`` (inside an app transaction) is written to the
  ``job_outbox`` table in that transaction and moved to Redis once it commits, so
  it exists exactly when the change it announces does; keepers move rows an
  after-commit send missed (a crash, a connection docjobs does not manage);
- the client retries commands through a Redis restart instead of failing at once,
  except the consumers' fetches: a fetch run twice would strand the first answer's
  messages, so consumers see the error and recover instead (see ``holdings``).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Self
from uuid import uuid4

import dramatiq
import psycopg
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.common import current_millis, dq_name, q_name
from dramatiq.errors import BrokerConnectionError
from dramatiq.message import Message
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.client import Pipeline
from redis.retry import Retry

from docjobs import errors
from docjobs.brokers.base import Capabilities, JobRef, QueueElsewhere, SharedParts
from docjobs.brokers.bullmq import health
from docjobs.brokers.bullmq.commands import DEDUPLICATE_OPTION, RedisCommands, script_source
from docjobs.brokers.bullmq.consumer import BullmqConsumer
from docjobs.brokers.bullmq.doorbell import Doorbell, DoorbellShutdown
from docjobs.brokers.bullmq.holdings import Holdings
from docjobs.brokers.bullmq.journal import HistoryJournal
from docjobs.brokers.bullmq.keeper import Keeper
from docjobs.brokers.history import JobHistory, merge_events
from docjobs.brokers.outbox import Outbox
from docjobs.db.board import BoardStore
from docjobs.db.store import JobStore, Row
from docjobs.settings import Settings

#: A command that fails on a lost connection is tried again with a backoff of
#: 50 ms doubling up to 1 s, for about 10 s in all: a Redis restart is waited out.
COMMAND_RETRIES = 14
DEFAULT_IDLE_POLL_SECONDS = 1.0
#: Messages per enqueue script call: a bigger batch is split, so Redis never blocks long.
ENQUEUE_CHUNK = 1000
#: How long an ended job's id stays taken unless told otherwise (the settings' retention).
DEFAULT_RETENTION_DAYS = 30.0
SECONDS_PER_DAY = 86_400

#: What ``_push`` sends of one message: Redis id, queue, data, due time, id key ("" for none).
Entry = tuple[str, str, bytes, int | None, str]


def _capabilities(with_database: bool) -> Capabilities:
    # The queue is in Redis: a retry sends a new job, bulk actions go job by job.
    return Capabilities(
        workers=True,
        scheduler=True,
        served=False,
        transactional_send=with_database,  # through the job outbox
        pause=True,
        cancel=True,
        run_now=True,
        join=True,
        flush=True,
        retry_in_place=False,
        bulk_by_filter=False,
    )


class BullmqBroker(QueueElsewhere, RedisBroker):
    """Dramatiq's Redis broker with docjobs' doorbell, batched acks and keeper.

    Args:
        url: ``redis://`` URL.
        namespace: Key prefix (``NEXT_PRIVATE_REDIS_PREFIX``).
        middleware: The middleware stack.
        heartbeat_timeout_seconds: A worker silent this long is dead; its jobs run again.
        idle_poll_seconds: The longest an idle consumer waits without a doorbell.
        store: Where the outbox lives; without it, sending with ``conn=`` is refused.
        retention_days: How long the id of a job sent with ``id=`` stays taken after the job ends.
        job_rows: The board's view of the jobs' history.

    Raises:
        dramatiq.errors.BrokerConnectionError: Redis does not answer.
    """

    name = "bullmq"
    keeps_history = True

    def __init__(
        self,
        url: str,
        *,
        namespace: str,
        middleware: list[dramatiq.Middleware],
        heartbeat_timeout_seconds: float,
        idle_poll_seconds: float = DEFAULT_IDLE_POLL_SECONDS,
        store: JobStore | None = None,
        retention_days: float = DEFAULT_RETENTION_DAYS,
        job_rows: BoardStore | None = None,
    ) -> None:
        connection = {"socket_connect_timeout": 2, "socket_keepalive": True, "health_check_interval": 30}
        client = redis.Redis.from_url(
            url,
            retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), COMMAND_RETRIES),
            retry_on_error=[redis.ConnectionError, redis.TimeoutError],
            **connection,
        )
        super().__init__(  # type: ignore[no-untyped-call]  # Dramatiq's RedisBroker is untyped
            client=client,
            namespace=namespace,
            middleware=middleware,
            heartbeat_timeout=int(heartbeat_timeout_seconds * 1000),
            maintenance_chance=0,  # the keeper does it, on time
        )
        self._url = url
        self.store = store
        self.job_rows = job_rows
        self.outbox = Outbox(store.outbox, self._push_rows, relayed_by="a keeper") if store else None
        self.id_key_prefix = f"{namespace}:__job_id__."
        self.id_ttl_ms = int(retention_days * SECONDS_PER_DAY * 1000)
        self.fetch_client = redis.Redis.from_url(url, retry=Retry(NoBackoff(), 0), **connection)
        self.idle_poll_seconds = idle_poll_seconds
        self.doorbell = Doorbell(client, namespace)
        self.add_middleware(DoorbellShutdown(self.doorbell))
        self.keeper = Keeper(
            maintain=self.maintain, relay=self.relay, heartbeat_timeout_seconds=heartbeat_timeout_seconds
        )
        self.commands = RedisCommands(
            client,
            self.fetch_client,
            namespace=namespace,
            broker_id=self.broker_id,
            dispatch=self.scripts["dispatch"],
            heartbeat_timeout_ms=self.heartbeat_timeout,
            dead_message_ttl_ms=self.dead_message_ttl,
            max_unpack_size=self._max_unpack_size,
            doorbell_channel=self.doorbell.channel,
            id_key_prefix=self.id_key_prefix,
            id_ttl_ms=self.id_ttl_ms,
            load_scripts=self.load_scripts,
        )
        self.enqueue_script = client.register_script(script_source("enqueue.lua"))
        self.remove_script = client.register_script(script_source("remove.lua"))
        self.schedule_script = client.register_script(script_source("schedule.lua"))
        #: Queues paused on the board (``set_paused``), as this process last read them.
        self.paused: frozenset[str] = frozenset()
        self.paused_key = f"{self.namespace}:__paused__"
        self._holdings: dict[str, Holdings] = {}
        self._holdings_lock = threading.Lock()
        #: The history middleware, and the journal its events go through (see ``journal``).
        self.history = next((m for m in middleware if isinstance(m, JobHistory)), None)
        self.journal = None
        if self.history is not None and store is not None:
            self.journal = HistoryJournal(client, namespace, store, merge_events)
            self.history.use_journal(self.journal)

    @classmethod
    def from_settings(cls, settings: Settings, parts: SharedParts) -> Self:
        """Dramatiq's Redis broker under ``NEXT_PRIVATE_REDIS_PREFIX``, checked to answer.

        Raises:
            dramatiq.errors.BrokerConnectionError: Redis does not answer.
        """
        assert settings.redis_url is not None  # checked by Settings
        broker = cls(
            settings.redis_url,
            namespace=settings.redis_prefix,
            middleware=parts.middleware,
            heartbeat_timeout_seconds=settings.lease_seconds,
            idle_poll_seconds=settings.poll_interval_seconds,
            store=parts.store,
            retention_days=settings.retention_days,
            job_rows=parts.job_rows,
        )
        broker.ping()
        return broker

    @classmethod
    def capabilities_for(cls, settings: Settings) -> Capabilities:
        return _capabilities(settings.database_url is not None)

    @property
    def capabilities(self) -> Capabilities:
        return _capabilities(self.store is not None)

    @classmethod
    def worker_liveness(cls, settings: Settings) -> tuple[bool, str]:
        """Some worker heartbeat in Redis within the heartbeat timeout (they name no host)."""
        return health.check_worker_redis(settings)

    def _withdraw(self, job: JobRef, action: str) -> bool:
        """Take the job out of Redis, unless a worker fetched it (workers hold fetched and delayed jobs)."""
        redis_id = job.options.get("redis_message_id")
        if redis_id is None:
            raise errors.NotSupportedError(
                f"{action} of a waiting job is not available on the bullmq provider yet"
            )
        return self.remove_waiting(job.queue, redis_id)

    def _promote(self, job: JobRef) -> bool:
        redis_id = job.options.get("redis_message_id")
        if redis_id is None:
            raise errors.NotSupportedError("promote is not available on the bullmq provider yet")
        return self.promote(job.queue, redis_id)

    def ping(self) -> None:
        """Check that Redis answers, once and without the restart retries.

        Raises:
            dramatiq.errors.BrokerConnectionError: It does not.
        """
        probe = redis.Redis.from_url(self._url, socket_connect_timeout=2, socket_timeout=2)
        try:
            probe.ping()
            self.load_scripts()
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise BrokerConnectionError(f"Redis is unreachable: {exc}") from None
        finally:
            probe.close()

    def consume(self, queue_name: str, prefetch: int = 1, timeout: int = 5000) -> BullmqConsumer:
        self.keeper.start()
        return BullmqConsumer(
            self.commands,
            queue_name,
            prefetch,
            idle_poll_seconds=self.idle_poll_seconds,
            doorbell=self.doorbell,
            holdings=self.holdings(queue_name),
            journaling=self.journaling,
            paused=lambda: self.paused,
        )

    def enqueue(
        self,
        message: Message[Any],
        *,
        delay: int | None = None,
        conn: psycopg.Connection[Any] | None = None,
    ) -> Message[Any]:
        """Enqueue ``message``; with ``conn``, once that connection's transaction commits.

        Its id is not checked: this is also how retries come back (see :meth:`enqueue_many`).

        Raises:
            errors.NotSupportedError: ``conn`` is given and the broker has no store.
        """
        (prepared,), _ = self._send([message], delay, conn, deduplicate=False)
        return prepared

    def enqueue_many(
        self,
        messages: Sequence[Message[Any]],
        *,
        delay: int | None = None,
        conn: psycopg.Connection[Any] | None = None,
        deduplicate: bool = True,
    ) -> int:
        """Enqueue ``messages`` in one round trip (or one outbox write with ``conn``).

        Args:
            deduplicate: The ids are the caller's: a message whose id is taken (its job
                waits, runs, or ended less than the retention period ago) is dropped,
                atomically in the enqueue script. With ``conn`` the check happens when
                the outbox row is moved to Redis, after the commit.

        Returns:
            How many were enqueued (with ``conn``: written to the outbox).
        """
        prepared, skipped = self._send(messages, delay, conn, deduplicate=deduplicate)
        return len(prepared) - len(skipped)

    def relay(self, ids: Sequence[str] | None = None) -> int:
        """Move outbox rows to their queues: ``ids``, or those their after-commit send missed.

        Returns:
            How many jobs were moved.
        """
        return 0 if self.outbox is None else self.outbox.relay(ids)

    def _send(
        self,
        messages: Sequence[Message[Any]],
        delay: int | None,
        conn: psycopg.Connection[Any] | None,
        *,
        deduplicate: bool,
    ) -> tuple[list[Message[Any]], set[str]]:
        """The prepared messages, and the Redis ids of those dropped as duplicates."""
        if conn is not None and self.outbox is None:
            raise errors.NotSupportedError(
                "this Redis broker has no database for sending inside a transaction"
            )
        prepared = [self._prepare(message, delay, deduplicate) for message in messages]
        entries = [self._entry(message, check_id=deduplicate) for message in prepared]
        if conn is None:
            skipped = self._push(entries)
            for message in prepared:
                if message.options["redis_message_id"] not in skipped:
                    self.emit_after("enqueue", message, delay)
            return prepared, skipped
        assert self.outbox is not None
        self.outbox.add(conn, [entry[:3] for entry in entries])  # the rest is in the data
        return prepared, set()

    def _prepare(self, message: Message[Any], delay: int | None, deduplicate: bool) -> Message[Any]:
        """Dramatiq's preparation: a Redis id of its own (a retry is a new entry), a due time if delayed.

        A delayed message keeps its queue's name (it is scheduled, not put on the
        delay queue); its ``eta`` is dropped by the consumer that runs it. A message
        sent with the caller's id is marked, so its outbox row, its end and its
        removal find its id's key.
        """
        options: dict[str, Any] = {"redis_message_id": str(uuid4())}
        if deduplicate:
            options[DEDUPLICATE_OPTION] = True
        if delay is not None:
            options["eta"] = current_millis() + delay
        message = message.copy(queue_name=q_name(message.queue_name), options=options)
        self.emit_before("enqueue", message, delay)
        return message

    def _entry(self, message: Message[Any], *, check_id: bool, data: bytes | None = None) -> Entry:
        """What ``_push`` sends of a prepared message; with ``check_id``, only if it takes its id's key.

        A retry keeps the mark of its first send, but is not checked: it is the job
        that holds the key.
        """
        eta = message.options.get("eta")
        return (
            message.options["redis_message_id"],
            message.queue_name,
            message.encode() if data is None else data,
            None if eta is None else int(eta),
            self.id_key(message.message_id) if check_id else "",
        )

    def id_key(self, job_id: str) -> str:
        """The key a job sent with the caller's id holds while its id is taken."""
        return self.commands.id_key(job_id)

    def _push(self, entries: Sequence[Entry]) -> set[str]:
        """Enqueue (or schedule, with a due time) each entry, in one round trip.

        One message (a plain send) is one EVALSHA; more go in a pipeline of one
        script call per queue and chunk. Each call rings its queue's doorbell.

        Returns:
            The Redis ids of the messages dropped because their id's key was taken.
        """
        calls: list[list[Any]] = []
        by_queue: dict[tuple[str, bool], list[Any]] = {}
        for message_id, queue_name, data, eta, id_key in entries:
            if eta is None:
                by_queue.setdefault((queue_name, False), []).extend((message_id, data, id_key))
            else:
                by_queue.setdefault((queue_name, True), []).extend((message_id, data, eta, id_key))
        for (queue_name, delayed), items in by_queue.items():
            step = (4 if delayed else 3) * ENQUEUE_CHUNK
            for start in range(0, len(items), step):
                calls.append(self._enqueue_call(queue_name, delayed, items[start : start + step]))
        if len(calls) == 1:
            try:
                results = [self.client.evalsha(*calls[0])]
            except redis.exceptions.NoScriptError:  # refused, so not run: load and run it
                self.load_scripts()
                results = [self.client.evalsha(*calls[0])]
        else:

            def build(pipeline: Pipeline) -> None:
                for call in calls:
                    pipeline.evalsha(*call)

            results = self.commands.run_pipeline(build)
        return {skipped.decode() for result in results for skipped in result}

    def _enqueue_call(self, queue_name: str, delayed: bool, items: list[Any]) -> list[Any]:
        queue_key = f"{self.namespace}:{queue_name}"
        channel = self.doorbell.channel
        if delayed:  # the delay queue's consumers keep the schedule: wake them to look again
            keys = [f"{queue_key}.delayed", f"{queue_key}.msgs"]
            return [self.schedule_script.sha, 2, *keys, channel, dq_name(queue_name), *items]
        return [self.enqueue_script.sha, 2, queue_key, f"{queue_key}.msgs", channel, queue_name, *items]

    def _push_rows(self, rows: list[Row]) -> None:
        messages = [Message.decode(bytes(row["data"])) for row in rows]
        # Rows written before delayed jobs were scheduled name the delay queue: same thing.
        # Retries are never sent through the outbox: a marked message there is a first send.
        skipped = self._push(
            [
                (row["id"], q_name(row["queue"]))
                + self._entry(
                    message, check_id=bool(message.options.get(DEDUPLICATE_OPTION)), data=bytes(row["data"])
                )[2:]
                for row, message in zip(rows, messages, strict=True)
            ]
        )
        now = current_millis()
        for row, message in zip(rows, messages, strict=True):
            if row["id"] in skipped:
                continue
            eta = message.options.get("eta")
            self.emit_after("enqueue", message, max(int(eta) - now, 0) if eta is not None else None)

    def remove_waiting(self, queue_name: str, redis_message_id: str) -> bool:
        """Take a message no worker has fetched out of its queue (or delay queue).

        Returns:
            ``False`` when it was not waiting: a worker holds it, or it is gone.
        """
        queue_key = f"{self.namespace}:{q_name(queue_name)}"
        delay_key = f"{self.namespace}:{dq_name(q_name(queue_name))}"
        keys = [queue_key, f"{queue_key}.msgs", delay_key, f"{delay_key}.msgs", f"{queue_key}.delayed"]
        args: list[str | int] = [redis_message_id, self.id_key_prefix, self.id_ttl_ms]
        return bool(self.remove_script(keys=keys, args=args))

    def promote(self, queue_name: str, redis_message_id: str) -> bool:
        """Move a scheduled message to the end of its queue now, whatever its due time.

        Returns:
            ``False`` when it was not scheduled: it is due and moved already, or gone.
        """
        results = self.commands.run_pipeline(
            lambda pipeline: self.commands.move_due_to(pipeline, queue_name, [redis_message_id])
        )
        moved, _ = results[0]
        return int(moved) == 1

    def flush(self, queue_name: str) -> None:
        """Drop every message of ``queue_name``, scheduled ones included."""
        super().flush(queue_name)
        self.client.delete(f"{self.namespace}:{q_name(queue_name)}.delayed")

    @contextlib.contextmanager
    def journaling(self) -> Iterator[Callable[[Pipeline], None]]:
        """Around a pipeline that sends acks: yields what adds the pending history events to it.

        The events go first in the pipeline, so none of them is lost once its job's ack
        went through; if the pipeline fails they are kept for the next one.
        """
        history, journal = self.history, self.journal
        if history is None or journal is None:
            yield lambda pipeline: None
            return
        with history.pushing:
            entry = history.take()
            if entry is None:
                yield lambda pipeline: None
                return
            try:
                yield lambda pipeline: journal.push_to(pipeline, entry)
            except BaseException:
                history.put_back(entry)
                raise

    def load_scripts(self) -> None:
        """Put docjobs' and Dramatiq's scripts in Redis's script cache."""
        scripts = (self.scripts["dispatch"], self.commands.ack_script, self.enqueue_script)
        for script in (*scripts, self.schedule_script, self.commands.move_due_script, self.remove_script):
            self.client.script_load(script.script)
        if self.journal is not None:
            self.client.script_load(self.journal.trim_script.script)

    def maintain(self) -> None:
        """Heartbeat, give every declared queue back the jobs of dead workers, learn the paused queues."""

        def build(pipeline: Pipeline) -> None:
            for queue_name in sorted(self.queues):
                for name in (queue_name, dq_name(queue_name)):
                    # "heartbeat" is no command of the script: it only beats and maintains.
                    self.commands.dispatch_to(pipeline, "heartbeat", name, maintenance=True)
            if not self.queues:
                self.commands.dispatch_to(pipeline, "heartbeat", "default")
            pipeline.smembers(self.paused_key)

        results = self.commands.run_pipeline(build)
        self.paused = frozenset(member.decode() for member in results[-1])

    def set_paused(self, queue_name: str, paused: bool) -> None:
        """Pause a queue (consumers fetch nothing from it) or resume it, for every worker.

        Workers learn it at their keeper's next round (within a few seconds).
        """
        if paused:
            self.client.sadd(self.paused_key, queue_name)
        else:
            self.client.srem(self.paused_key, queue_name)

    def holdings(self, queue_name: str) -> Holdings:
        """What this process holds of ``queue_name``, shared by its successive consumers."""
        with self._holdings_lock:
            return self._holdings.setdefault(queue_name, Holdings())

    def close(self) -> None:
        self.keeper.stop()
        self.doorbell.close()
        super().close()
        self.client.close()
        self.fetch_client.close()
