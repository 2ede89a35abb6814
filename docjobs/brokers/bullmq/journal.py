"""The job history's journal in Redis: events are durable before the acks they describe.

The history middleware keeps a job's events in memory and writes them to
PostgreSQL in the background. Alone, that loses the events a process held when it
was killed, and a database outage makes the window as long as the outage: the job
ran and was acknowledged, yet its row says PENDING for ever. So on bullmq, events
go to a Redis list first, in the same round trip as the acks of the jobs they
describe and ahead of them (a consumer sends both in one pipeline, in order), and
any process moves the list into PostgreSQL, one at a time under a lease. An event
is then lost only with its ack, and a job whose ack is lost runs again and records
anew. Each entry is one batch taken from one process (its events and its failed
attempts together, as ``store.history.record`` wants them); applying an entry twice
changes nothing, since a row only moves forward.

The history knows this journal only as ``brokers.journal.Journal``: Redis's errors
become docjobs' here, in :func:`_redis_errors`.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Callable, Iterator
from importlib import resources
from typing import TYPE_CHECKING, Any

import psycopg
import redis
from redis.client import Pipeline

from docjobs import errors
from docjobs.brokers.journal import Batch, Failures, decode
from docjobs.db.store import JobStore

if TYPE_CHECKING:
    from docjobs.brokers.history import JobHistory

logger = logging.getLogger(__name__)

#: Entries moved to PostgreSQL in one statement.
DRAIN_BATCH = 200
#: How long the right to move entries outlives its holder's last batch: a killed
#: holder blocks the journal no longer than this.
LEASE_MILLISECONDS = 5_000

Events = dict[str, dict[str, Any]]
#: Merges one job's two events into one (the history's ``_merge``).
Merge = Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]]


class HistoryJournal:
    """A Redis list of history batches, moved into ``background_job`` by whoever holds its lease.

    Args:
        client: The broker's Redis client (with its restart retries).
        namespace: The broker's key prefix.
        store: Where the rows go.
        merge: How two events of one job become one.
    """

    def __init__(self, client: redis.Redis, namespace: str, store: JobStore, merge: Merge) -> None:
        self.client = client
        self.key = f"{namespace}:__history__"
        self.lease_key = f"{namespace}:__history__.lease"
        self.store = store
        self.merge = merge
        self.trim_script = client.register_script(
            resources.files("docjobs.brokers.bullmq").joinpath("journal_trim.lua").read_bytes()
        )
        # The batches of this process's own entries, by entry: its drain, which usually
        # follows within a round, moves them without decoding them again (issue 21:
        # ~1.5 us per event, a tenth of moving it). Each is kept for two drains at most:
        # about two rounds' batches.
        self._batches: dict[bytes, Batch] = {}
        self._forget: list[bytes] = []

    def push_to(self, pipeline: Pipeline, entry: bytes, batch: Batch | None = None) -> None:
        """Add the push of one batch to ``pipeline`` (ahead of the acks it covers)."""
        self._remember(entry, batch)
        pipeline.rpush(self.key, entry)

    def push(self, entry: bytes, batch: Batch | None = None) -> None:
        """Push one batch now (``batch``: what ``entry`` encodes, to skip decoding it when moved).

        Raises:
            errors.BrokerError: Redis did not take it.
        """
        self._remember(entry, batch)
        with _redis_errors():
            self.client.rpush(self.key, entry)

    def _remember(self, entry: bytes, batch: Batch | None) -> None:
        if batch is not None:
            self._batches[entry] = batch

    def drain(self) -> int:
        """Move entries to PostgreSQL until none is left or another process holds the lease.

        Returns:
            How many entries were moved.

        Raises:
            errors.BrokerError: Redis failed; the entries stay in the list.
            psycopg.Error: The database failed; the entries stay in the list.
        """
        # A batch is remembered before its push (a consumer's pipeline runs after), and
        # forgotten at the end of the drain after the first that began once it was: what
        # those did not move (another process's lease, an outage) is decoded when it is.
        remembered = list(self._batches)
        try:
            with _redis_errors():
                return self._drain()
        finally:
            for entry in self._forget:
                self._batches.pop(entry, None)
            self._forget = remembered

    def _drain(self) -> int:
        token = uuid.uuid4().hex
        if not self.client.set(self.lease_key, token, nx=True, px=LEASE_MILLISECONDS):
            return 0
        moved = 0
        try:
            while True:
                raw: list[bytes] = self.client.lrange(self.key, 0, DRAIN_BATCH - 1)  # type: ignore[assignment]
                if not raw:
                    return moved
                self._apply(raw)
                # Only while the lease is still ours: another holder may have moved these already.
                trimmed = self.trim_script(
                    keys=[self.key, self.lease_key], args=[token, len(raw), LEASE_MILLISECONDS]
                )
                if not trimmed:
                    logger.warning("Lost the job history journal's lease while moving it; leaving it.")
                    return moved
                moved += len(raw)
        finally:
            self.trim_script(keys=[self.key, self.lease_key], args=[token, 0, 0, "release"])

    def _apply(self, raw: list[bytes]) -> None:
        events, failures = self._collapse(raw)
        try:
            self.store.history.record(list(events.values()), failures)
        except psycopg.OperationalError:
            raise  # the database is away: the entries wait
        except psycopg.Error:
            # The database refused the data itself: one bad entry must not block the
            # journal for ever. Apply them one by one and drop (and say) what is refused.
            for item in raw:
                events, failures = self._collapse([item])
                try:
                    self.store.history.record(list(events.values()), failures)
                except psycopg.OperationalError:
                    raise
                except psycopg.Error as exc:
                    logger.error("Dropped a job history entry the database refused: %s", exc)

    def pending(self) -> int:
        """Entries not moved yet.

        Raises:
            errors.BrokerError: Redis did not answer.
        """
        with _redis_errors():
            return int(self.client.llen(self.key))

    def _collapse(self, raw: list[bytes]) -> tuple[Events, Failures]:
        events: Events = {}
        failures: Failures = []
        for item in raw:
            # An entry is only ever read here, so one of this process's is its batch, unchanged.
            batch = self._batches.pop(item, None)
            batch_events, batch_failures = decode(item) if batch is None else batch
            for event in batch_events:
                earlier = events.get(event["id"])
                events[event["id"]] = event if earlier is None else self.merge(earlier, event)
            failures.extend(batch_failures)
        return events, failures


@contextlib.contextmanager
def journaling(history: JobHistory, journal: HistoryJournal) -> Iterator[Callable[[Pipeline], None]]:
    """Around a pipeline that sends acks: yields what adds the pending history events to it.

    The events go first in the pipeline, so none of them is lost once its job's ack
    went through; if the pipeline fails they are kept for the next one.
    """
    with history.pushing:
        taken = history.take()
        if taken is None:
            yield lambda pipeline: None
            return
        entry, batch = taken
        try:
            yield lambda pipeline: journal.push_to(pipeline, entry, batch)
        except BaseException:
            history.put_back(entry)
            raise


@contextlib.contextmanager
def _redis_errors() -> Iterator[None]:
    """Redis's errors as docjobs' (the one place): the history handles those, and knows no Redis."""
    try:
        yield
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise errors.BrokerConnectionError(f"Redis is unreachable: {exc}") from exc
    except redis.RedisError as exc:
        raise errors.BrokerError(f"Redis refused a job history journal command: {exc}") from exc
