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
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Self

import dramatiq
import orjson
import psycopg
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.common import q_name
from dramatiq.errors import BrokerConnectionError
from dramatiq.message import Message
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.client import Pipeline
from redis.retry import Retry

from docjobs import errors, queues, strictjson
from docjobs.brokers.base import Capabilities, JobRef, SharedParts
from docjobs.brokers.bullmq import health
from docjobs.brokers.bullmq.commands import RedisCommands
from docjobs.brokers.bullmq.consumer import BullmqConsumer
from docjobs.brokers.bullmq.doorbell import Doorbell, DoorbellShutdown
from docjobs.brokers.bullmq.enqueue import QueueWriter
from docjobs.brokers.bullmq.flow import RedisFlow
from docjobs.brokers.bullmq.holdings import Holdings
from docjobs.brokers.bullmq.journal import HistoryJournal, journaling
from docjobs.brokers.bullmq.keeper import Keeper
from docjobs.brokers.elsewhere import QueueElsewhere
from docjobs.brokers.history import JobHistory, merge_events
from docjobs.brokers.outbox import Outbox
from docjobs.db.board import BoardStore
from docjobs.db.store import JobStore, Row
from docjobs.logging import first_line
from docjobs.settings import Settings

#: The variable the Redis URL comes from, in errors about it.
REDIS_URL_VARIABLE = "NEXT_PRIVATE_REDIS_URL"
#: A command that fails on a lost connection is tried again with a backoff of
#: 50 ms doubling up to 1 s, for about 10 s in all: a Redis restart is waited out.
COMMAND_RETRIES = 14
DEFAULT_IDLE_POLL_SECONDS = 1.0
#: How long an ended job's id stays taken unless told otherwise (the settings' retention).
DEFAULT_RETENTION_DAYS = 30.0
SECONDS_PER_DAY = 86_400


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


def encoded(message: Message[Any]) -> bytes:
    """``message.encode()``'s JSON, written by orjson when that reads back the same.

    Dramatiq's JSON encoder walks the message with the standard library, ~40 us a
    send, more than the rest of docjobs' send path (issue 21). A message of JSON's own
    types (:func:`strictjson.plain`) decodes the same from orjson's bytes; anything
    else (another encoder set, an enum, NaN, a 65-bit integer) is encoded by Dramatiq
    as before, so what is sent, or refused, does not change.
    """
    fields = message.asdict()
    if type(dramatiq.get_encoder()) is dramatiq.JSONEncoder and strictjson.plain(fields):
        try:
            return orjson.dumps(fields)
        except orjson.JSONEncodeError:  # integers beyond 64 bits; nesting past orjson's limit
            pass
    return message.encode()


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
        queue_concurrency: The most jobs of a queue a consumer holds at once, by queue.

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
        queue_concurrency: Mapping[str, int] | None = None,
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
        self.queue_concurrency = dict(queue_concurrency or {})
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
        self.writer = QueueWriter(
            client, self.commands, namespace=namespace, doorbell_channel=self.doorbell.channel
        )
        #: Queues paused on the board (``set_paused``), as this process last read them.
        self.paused: frozenset[str] = frozenset()
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
            queue_concurrency=settings.queue_concurrency,
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
        return self.commands.remove_waiting(job.queue, redis_id)

    def _promote(self, job: JobRef) -> bool:
        redis_id = job.options.get("redis_message_id")
        if redis_id is None:
            raise errors.NotSupportedError("promote is not available on the bullmq provider yet")
        return self.commands.promote(job.queue, redis_id)

    def ping(self) -> None:
        """Check that Redis answers, once and without the restart retries.

        Raises:
            errors.SettingsError: Redis refuses the URL (a password it needs and lacks, a user
                or password it rejects, a database number it does not have): no retry fixes it.
            dramatiq.errors.BrokerConnectionError: It does not answer, or is still loading.
        """
        probe = redis.Redis.from_url(self._url, socket_connect_timeout=2, socket_timeout=2)
        pinged = False
        try:
            probe.ping()
            pinged = True
            self.load_scripts()
        except redis.AuthenticationError as exc:  # a ConnectionError too: said first, and at once
            raise errors.SettingsError(_login_refused(probe, exc)) from None
        except (redis.ConnectionError, redis.TimeoutError) as exc:  # BusyLoadingError included
            raise BrokerConnectionError(f"Redis is unreachable: {exc}") from None
        except redis.ResponseError as exc:
            # The connection's set-up (AUTH, SELECT) or the URL's user's rights; a script
            # Redis cannot load is docjobs' bug, not the URL's, and keeps its traceback.
            if pinged and not isinstance(exc, redis.exceptions.NoPermissionError):
                raise
            raise errors.SettingsError(_url_refused(probe, exc)) from None
        finally:
            probe.close()

    def queue_depths(self) -> dict[str, int]:
        """Jobs waiting in each declared queue's Redis list (fetched ones and delayed ones not counted)."""
        names = sorted(self.get_declared_queues())
        return dict(zip(names, self.commands.waiting_counts(names), strict=True))

    def consume(self, queue_name: str, prefetch: int = 1, timeout: int = 5000) -> BullmqConsumer:
        self.keeper.start()
        return BullmqConsumer(
            self.commands,
            queue_name,
            queues.capped_prefetch(self.queue_concurrency, queue_name, prefetch),
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
        entries = [
            self.writer.entry(message, check_id=deduplicate, data=encoded(message)) for message in prepared
        ]
        if conn is None:
            skipped = self.writer.push(entries)
            for message in prepared:
                if message.options["redis_message_id"] not in skipped:
                    self.emit_after("enqueue", message, delay)
            return prepared, skipped
        assert self.outbox is not None
        self.outbox.add(conn, [entry[:3] for entry in entries])  # the rest is in the data
        return prepared, set()

    def _prepare(self, message: Message[Any], delay: int | None, deduplicate: bool) -> Message[Any]:
        message = self.writer.prepare(message, delay, deduplicate)
        self.emit_before("enqueue", message, delay)
        return message

    def id_key(self, job_id: str) -> str:
        """The key a job sent with the caller's id holds while its id is taken."""
        return self.commands.id_key(job_id)

    def _push_rows(self, rows: list[Row]) -> None:
        for message, delay in self.writer.push_rows(rows):
            self.emit_after("enqueue", message, delay)

    def flush(self, queue_name: str) -> None:
        """Drop every message of ``queue_name``, scheduled ones included."""
        super().flush(queue_name)
        self.client.delete(f"{self.namespace}:{q_name(queue_name)}.delayed")

    def journaling(self) -> contextlib.AbstractContextManager[Callable[[Pipeline], None]]:
        """Around a pipeline that sends acks: yields what adds the pending history events to it."""
        if self.history is None or self.journal is None:
            return contextlib.nullcontext(lambda pipeline: None)
        return journaling(self.history, self.journal)

    def flow_store(self) -> RedisFlow:
        """Flow control's state in Redis, under the provider's namespace."""
        return RedisFlow(self.client, self.namespace)

    def load_scripts(self) -> None:
        """Put docjobs' and Dramatiq's scripts in Redis's script cache."""
        scripts = (self.scripts["dispatch"], self.commands.ack_script, *self.writer.scripts)
        for script in (*scripts, self.commands.move_due_script, self.commands.remove_script):
            self.client.script_load(script.script)
        if self.journal is not None:
            self.client.script_load(self.journal.trim_script.script)

    def maintain(self) -> None:
        """Heartbeat, give every declared queue back the jobs of dead workers, learn the paused queues."""
        self.paused = self.commands.maintain(self.queues)

    def set_paused(self, queue_name: str, paused: bool) -> None:
        """Pause a queue (consumers fetch nothing from it) or resume it, for every worker.

        Workers learn it at their keeper's next round (within a few seconds).
        """
        self.commands.set_paused(queue_name, paused)

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


def _login_refused(probe: redis.Redis, exc: redis.AuthenticationError) -> str:
    """Redis refused the login: no password given (Redis's words are about HELLO), or a wrong one."""
    if probe.connection_pool.connection_kwargs.get("password") is None:
        return f"Redis needs a password: {REDIS_URL_VARIABLE} has none"
    return f"{REDIS_URL_VARIABLE}: Redis refused the login: {exc}"


def _url_refused(probe: redis.Redis, exc: redis.ResponseError) -> str:
    """Redis answered the connection's set-up with an error: the URL asks for what it has not."""
    reason = first_line(exc)
    database = probe.connection_pool.connection_kwargs.get("db", 0)
    if "DB index is out of range" in reason:
        return (
            f"{REDIS_URL_VARIABLE}: Redis has no database {database} ({reason}; "
            "its `databases` setting says how many there are, 16 by default)"
        )
    return f"{REDIS_URL_VARIABLE}: Redis refused it: {reason}"
