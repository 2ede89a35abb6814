"""Unit-test your jobs without PostgreSQL or Redis: a runtime on the in-memory stub provider.

::

    import dramatiq
    from docjobs import jobs, testing

    def test_the_greeting_runs() -> None:
        with testing.stub_runtime() as runtime:
            worker = dramatiq.Worker(runtime.broker, worker_timeout=100)
            worker.start()
            try:
                jobs.trigger("app.greet", {"name": "Ada"})
                runtime.broker.join("default", timeout=10_000)
            finally:
                worker.stop()

Actors declared with ``docjobs.actor`` (and plain ``@dramatiq.actor`` ones) are bound
to the stub while it is installed, so ``send`` and ``jobs.trigger`` land on its queues.
Installing it boots the process as the ``dramatiq`` command does (``process_boot``), so
``time_limit`` interrupts a job as on a worker. Groups, pipelines' results and
``store_results`` need Dramatiq's ``Results``: pass
``stub_runtime(middleware=[Results(backend=StubBackend())])``.
What needs a database (``conn=``, the domain tables, the board) is refused with
``errors.NotSupportedError``. The servers docjobs' own tests start (PostgreSQL, Redis,
the Inngest emulator) are in the separate ``docjobs-devkit`` distribution.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from types import TracebackType

import dramatiq
from dramatiq.middleware import TimeLimit

from docjobs import globalbroker, runtime
from docjobs.brokers.middleware import default_middleware
from docjobs.brokers.stub import MemoryTasks, StubBroker
from docjobs.scheduler import table as cron_table
from docjobs.settings import Settings

__all__ = ["MemoryTasks", "StubBroker", "StubRuntime", "stub_runtime"]


class _ProcessTimeLimit(TimeLimit):
    """Dramatiq's ``TimeLimit`` whose timer thread starts at the process's first boot only.

    The thread never ends; a worker process, which the ``dramatiq`` command boots once,
    has one. A test process installs many stub runtimes, so they share one of these, and
    a later ``process_boot`` (each runtime's, or a test's own) starts nothing more.
    """

    def __init__(self) -> None:
        super().__init__()
        self._boot_lock = threading.Lock()
        self._booted = False

    def after_process_boot(self, broker: dramatiq.Broker) -> None:
        with self._boot_lock:
            if self._booted:
                return
            self._booted = True
        super().after_process_boot(broker)  # type: ignore[no-untyped-call]


#: The time limits of every stub runtime of this process (Dramatiq's defaults, as docjobs' stack).
_TIME_LIMIT = _ProcessTimeLimit()


class StubRuntime(runtime.Runtime):
    """A runtime on the :class:`StubBroker`, without a database.

    Used as a context manager, it is the process's runtime inside the block, and the
    runtime is reset (closed and unbound) at exit.
    """

    broker: StubBroker

    def __enter__(self) -> StubRuntime:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        runtime.reset()


def stub_runtime(
    settings: Settings | None = None,
    *,
    fail_fast: bool = True,
    middleware: Sequence[dramatiq.Middleware] = (),
) -> StubRuntime:
    """Build a runtime on the in-memory stub provider, make it the process's runtime and boot it.

    Booting emits ``process_boot``, as the ``dramatiq`` command does in a worker
    process, so ``time_limit`` interrupts a job (Dramatiq's ``TimeLimit`` starts its
    timer then). Dramatiq has no signal for a process's end: leaving the runtime
    resets it, and the time limits' timer, shared by the process's stub runtimes, stays.

    Args:
        settings: What the stub's middleware reads: retries, backoff, the payload limit
            and the log level (and mail and signing, for the actors that use them). Their
            provider becomes ``stub``, keeping the retries they give. By default, docjobs'
            defaults in development, with the stub's retries (Dramatiq's 20).
        fail_fast: ``broker.join`` raises the error of a job that ended in
            ``broker.dead_letters`` (Dramatiq's default); ``False`` only waits.
        middleware: More middleware, after docjobs' stack and in place before any
            actor is bound, so the options they declare are known: pass
            ``[Results(backend=StubBackend())]`` for groups, pipelines' results and
            ``store_results``.

    Returns:
        The installed runtime; ``with stub_runtime() as runtime:`` resets it at exit.
    """
    settings = _development_defaults() if settings is None else _as_stub(settings)
    stack = default_middleware(
        max_retries=settings.retries,
        min_backoff_seconds=settings.min_backoff_seconds,
        max_backoff_seconds=settings.max_backoff_seconds,
        max_payload_bytes=settings.max_payload_bytes,
        task_store=MemoryTasks(),
    )
    stack = [_TIME_LIMIT if type(each) is TimeLimit else each for each in stack]
    built = StubRuntime(
        settings=settings,
        broker=StubBroker(middleware=[*stack, *middleware], fail_fast_default=fail_fast),
        cron=cron_table.build(settings),
    )
    globalbroker.own(built.broker)  # docjobs' broker, as the runtime's factory marks its own
    runtime.install(built)
    built.broker.emit_after("process_boot")
    return built


def _development_defaults() -> Settings:
    # No variable read: the environment's NEXT_PRIVATE_* are the app's, not this test's.
    return Settings.model_validate({"NODE_ENV": "development", "NEXT_PRIVATE_JOBS_PROVIDER": "stub"})


def _as_stub(settings: Settings) -> Settings:
    # The runtime's settings name its provider; the retries stay those the caller's settings give.
    return settings.replace(provider="stub", max_retries=settings.retries)
