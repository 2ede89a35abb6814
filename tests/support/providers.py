"""One way to drive every provider in the conformance suite (tests/conformance).

A :class:`Harness` hides how a provider runs jobs. A test declares its actors with
``harness.actor(...)``, starts the provider with ``harness.run()`` (workers, or the
served app that Inngest calls), sends, then waits with ``harness.join()`` and looks
at what happened: ``harness.dead(message)`` says whether a message ended dead.

The providers (the conformance fixture's params):

- ``dramatiq-stub``: Dramatiq's own ``StubBroker`` and ``Worker``, the reference.
- ``dramatiq-redis``: Dramatiq's stock ``RedisBroker`` on the test Redis, under a key
  namespace of its own.
- ``local``, ``bullmq``, ``inngest``: docjobs' runtimes as ``tests/conftest.py`` builds
  them (``make_runtime``), with a worker, or the app served to the Inngest emulator.
- ``stub``: docjobs' in-memory provider (``docjobs.testing.stub_runtime()``).

Actors are declared the provider's way: plain Dramatiq actors on Dramatiq's brokers,
docjobs job actors (``docjobs.actor``) on docjobs' (the only kind Inngest serves).
Both take keyword arguments, so the tests send with keywords everywhere.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import dramatiq
import psycopg
from docjobs_devkit.http import serve
from docjobs_devkit.inngest import InngestServer
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.results import ResultBackend, Results
from dramatiq.results.backends import RedisBackend, StubBackend

import docjobs
from docjobs import registry, runtime, testing
from docjobs.brokers.base import JobRef
from docjobs.brokers.middleware import default_middleware
from docjobs.runtime import Runtime
from docjobs.web.app import create_app
from tests.conftest import wait_for

#: The params of the conformance fixture, in order.
DRAMATIQ_PROVIDERS = ("dramatiq-stub", "dramatiq-redis")
DOCJOBS_PROVIDERS = ("local", "bullmq", "inngest", "stub")

#: Retries of an actor that names none, as docjobs' default provider settings.
DEFAULT_MAX_RETRIES = 3
#: Backoffs small enough that a job out of retries is dead well within a second.
MIN_BACKOFF_SECONDS = 0.01
MAX_BACKOFF_SECONDS = 0.1
MAX_PAYLOAD_BYTES = 1024 * 1024
#: How long a worker waits on an empty queue before it looks again (Dramatiq's worker_timeout).
WORKER_TIMEOUT_MS = 50
#: Prefix of the test actors' names (job ids).
ACTOR_PREFIX = "conformance."


class Harness:
    """A provider under test.

    Attributes:
        name: The fixture param (``local``, ``dramatiq-stub``, ...).
        broker: The provider's broker; actors are declared on it.
        runtime: docjobs' runtime, or None on Dramatiq's own brokers.
        docjobs: Whether this is one of docjobs' providers (``jobs.trigger`` works there).
    """

    docjobs = False

    def __init__(self, name: str, broker: dramatiq.Broker, runtime: Runtime | None = None) -> None:
        self.name = name
        self.broker = broker
        self.runtime = runtime
        self.results_backend: ResultBackend | None = None
        self._running = False
        self._exits = contextlib.ExitStack()
        self.worker: dramatiq.Worker | None = None
        self._declared: list[str] = []

    def actor(
        self, fn: Callable[..., Any], *, name: str | None = None, **options: Any
    ) -> dramatiq.Actor[Any, Any]:
        """Declare ``fn`` as an actor named ``conformance.<name or fn's name>`` with Dramatiq ``options``."""
        actor_name = ACTOR_PREFIX + (name or fn.__name__)
        self._declared.append(actor_name)
        if self.docjobs:
            return docjobs.actor(actor_name, **options)(fn)
        return dramatiq.actor(fn, broker=self.broker, actor_name=actor_name, **options)

    def with_results(self) -> ResultBackend:
        """Add Dramatiq's ``Results`` middleware (before declaring actors with ``store_results``)."""
        assert self.results_backend is None, "results are on already"
        self.results_backend = self._results_backend()
        self.broker.add_middleware(Results(backend=self.results_backend))
        return self.results_backend

    def run(self, *, threads: int = 2, prefetch: int = 0) -> None:
        """Start running jobs: ``threads`` worker threads holding up to ``prefetch`` messages (0: Dramatiq's default)."""
        assert not self._running, "the provider runs already"
        self._running = True
        self._start(threads, prefetch)

    def join(self, queue_name: str = "default", *, timeout_seconds: float = 10.0) -> None:
        """Wait until ``queue_name`` holds no job, those its jobs sent included.

        Raises:
            dramatiq.errors.QueueJoinTimeout: Jobs are left after ``timeout_seconds``.
        """
        self.broker.join(queue_name, timeout=int(timeout_seconds * 1000))

    def waiting(self) -> int | None:
        """How many messages the workers hold but have not started, or None where no worker holds any."""
        assert self.worker is not None, "run() first"
        return int(self.worker.work_queue.qsize())

    def dead(self, message: dramatiq.Message[Any]) -> bool:
        """Whether ``message`` ended out of retries (dead-lettered, or FAILED in docjobs' history)."""
        raise NotImplementedError

    def close(self) -> None:
        """Stop what :meth:`run` started and forget the declared actors."""
        self._exits.close()
        for name in self._declared:
            registry.forget(name)

    def _start(self, threads: int, prefetch: int) -> None:
        self.broker.emit_after("process_boot")
        worker = dramatiq.Worker(self.broker, worker_threads=threads, worker_timeout=WORKER_TIMEOUT_MS)
        if prefetch:
            worker.queue_prefetch = prefetch  # what `dramatiq_queue_prefetch` sets, for this worker only
        worker.start()
        self.worker = worker
        self._exits.callback(worker.stop, timeout=10_000)

    def _results_backend(self) -> ResultBackend:
        return StubBackend()


def dramatiq_middleware() -> list[dramatiq.Middleware]:
    """docjobs' stack with small backoffs, so Dramatiq's brokers retry as docjobs' do."""
    return default_middleware(
        max_retries=DEFAULT_MAX_RETRIES,
        min_backoff_seconds=MIN_BACKOFF_SECONDS,
        max_backoff_seconds=MAX_BACKOFF_SECONDS,
        max_payload_bytes=MAX_PAYLOAD_BYTES,
    )


class DramatiqStubHarness(Harness):
    """Dramatiq's ``StubBroker`` and ``Worker``: the reference behaviour."""

    def __init__(self) -> None:
        super().__init__("dramatiq-stub", StubBroker(middleware=dramatiq_middleware()))

    def join(self, queue_name: str = "default", *, timeout_seconds: float = 10.0) -> None:
        assert isinstance(self.broker, StubBroker)
        # Not fail_fast: a dead message is an outcome the tests look at, not an error of join.
        self.broker.join(queue_name, timeout=int(timeout_seconds * 1000), fail_fast=False)
        assert self.worker is not None, "run() first"
        self.worker.join()

    def dead(self, message: dramatiq.Message[Any]) -> bool:
        assert isinstance(self.broker, StubBroker)
        return message.message_id in {dead.message_id for dead in self.broker.dead_letters}

    def close(self) -> None:
        super().close()
        self.broker.close()


class DramatiqRedisHarness(Harness):
    """Dramatiq's stock ``RedisBroker``, under a namespace of its own on the test Redis."""

    def __init__(self, redis_url: str) -> None:
        self.namespace = f"conformance-{uuid.uuid4().hex}"
        broker = RedisBroker(url=redis_url, namespace=self.namespace, middleware=dramatiq_middleware())
        super().__init__("dramatiq-redis", broker)

    def dead(self, message: dramatiq.Message[Any]) -> bool:
        assert isinstance(self.broker, RedisBroker)
        # Dead messages sit in the queue's XQ under a Redis id of each enqueue's: look them up by message id.
        kept = self.broker.client.hvals(f"{self.namespace}:{message.queue_name}.XQ.msgs")
        return message.message_id in {dramatiq.Message.decode(raw).message_id for raw in kept}

    def close(self) -> None:
        super().close()
        assert isinstance(self.broker, RedisBroker)
        self.broker.flush_all()
        self.broker.close()

    def _results_backend(self) -> ResultBackend:
        assert isinstance(self.broker, RedisBroker)
        return RedisBackend(client=self.broker.client, namespace=f"{self.namespace}-results")


class RuntimeHarness(Harness):
    """A docjobs runtime (local or bullmq) and in-process Dramatiq workers."""

    docjobs = True

    def __init__(self, name: str, runtime: Runtime) -> None:
        super().__init__(name, runtime.broker, runtime)

    @property
    def database_url(self) -> str:
        assert self.runtime is not None and self.runtime.settings.database_url is not None
        return self.runtime.settings.database_url

    def join(self, queue_name: str = "default", *, timeout_seconds: float = 10.0) -> None:
        assert self.runtime is not None
        self.runtime.join(queue_name, timeout_seconds=timeout_seconds)  # flushes the history too

    def status(self, message: dramatiq.Message[Any]) -> str | None:
        """The job's status in ``background_job`` (the history written first), or None without a row."""
        assert self.runtime is not None
        if self.runtime.history is not None:
            self.runtime.history.flush()
        with psycopg.connect(self.database_url) as conn:
            row = conn.execute(
                "SELECT status FROM background_job WHERE id = %s", (message.message_id,)
            ).fetchone()
        return None if row is None else str(row[0])

    def dead(self, message: dramatiq.Message[Any]) -> bool:
        return self.status(message) == "FAILED"

    def row(self, job_id: str) -> dict[str, Any] | None:
        """The job's row as the board reads it (the history written first), or None without one."""
        assert self.runtime is not None
        if self.runtime.history is not None:
            self.runtime.history.flush()
        rows = self.runtime.broker.job_rows
        assert rows is not None, f"the {self.name} provider has no job rows"
        return rows.job(job_id)

    def job(self, message: dramatiq.Message[Any]) -> JobRef:
        """The job as the board hands it to the broker's actions (web/board/actions.py)."""
        row = self.row(message.message_id)
        assert row is not None, f"no row of job {message.message_id}"
        return JobRef.from_row(row)


class InngestHarness(RuntimeHarness):
    """The inngest runtime: the app served on loopback, synced with the emulator, which calls it."""

    def __init__(self, runtime: Runtime, emulator: InngestServer, port: int | None) -> None:
        super().__init__("inngest", runtime)
        self.emulator = emulator
        self.port = port

    def waiting(self) -> int | None:
        return None

    def _start(self, threads: int, prefetch: int) -> None:
        # Threads and prefetch are Inngest's business: it calls the app for each step.
        assert self.runtime is not None
        base = self._exits.enter_context(serve(create_app(self.runtime), port=self.port, access_log=False))
        response = self.emulator.sync(f"{base}/api/jobs")
        assert 200 == response.status_code, response.text


class StubHarness(RuntimeHarness):
    """docjobs' in-memory provider (``docjobs.testing.stub_runtime()``) and an in-process worker."""

    def __init__(self) -> None:
        # Not fail_fast: a dead message is an outcome the tests look at, not an error of join.
        super().__init__("stub", testing.stub_runtime(fail_fast=False))

    def dead(self, message: dramatiq.Message[Any]) -> bool:
        assert isinstance(self.broker, testing.StubBroker)
        return message.message_id in {dead.message_id for dead in self.broker.dead_letters}

    def job(self, message: dramatiq.Message[Any]) -> JobRef:
        """The stub keeps no rows: the job as a board would see it, waiting."""
        return JobRef(
            id=message.message_id,
            queue=message.queue_name,
            actor=message.actor_name,
            status="PENDING",
            run_at=None,
            options=message.options,
            payload=message.kwargs,
        )

    def close(self) -> None:
        super().close()
        runtime.reset()


class Calls:
    """What the test actors did, in order, with when (``time.monotonic()``); safe across threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: list[tuple[Any, float]] = []

    def add(self, value: Any) -> None:
        with self._lock:
            self._calls.append((value, time.monotonic()))

    def values(self) -> list[Any]:
        with self._lock:
            return [value for value, _ in self._calls]

    def times(self) -> list[float]:
        with self._lock:
            return [at for _, at in self._calls]

    def wait(self, count: int, *, timeout_seconds: float = 10.0) -> list[Any]:
        """The values once there are at least ``count``; fails after ``timeout_seconds``."""
        wait_for(lambda: len(self.values()) >= count, timeout=timeout_seconds)
        return self.values()
