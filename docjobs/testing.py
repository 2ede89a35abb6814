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
What needs a database (``conn=``, the domain tables, the board) is refused with
``errors.NotSupportedError``. The servers docjobs' own tests start (PostgreSQL, Redis,
the Inngest emulator) are in the separate ``docjobs-devkit`` distribution.
"""

from __future__ import annotations

from types import TracebackType

from docjobs import globalbroker, runtime
from docjobs.brokers.middleware import default_middleware
from docjobs.brokers.stub import MemoryTasks, StubBroker
from docjobs.scheduler import table as cron_table
from docjobs.settings import Settings

__all__ = ["MemoryTasks", "StubBroker", "StubRuntime", "stub_runtime"]


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


def stub_runtime(settings: Settings | None = None, *, fail_fast: bool = True) -> StubRuntime:
    """Build a runtime on the in-memory stub provider and make it the process's runtime.

    Args:
        settings: What the stub's middleware reads: retries, backoff, the payload limit
            and the log level (and mail and signing, for the actors that use them). The
            provider they name is not used. By default, docjobs' defaults in development.
        fail_fast: ``broker.join`` raises the error of a job that ended in
            ``broker.dead_letters`` (Dramatiq's default); ``False`` only waits.

    Returns:
        The installed runtime; ``with stub_runtime() as runtime:`` resets it at exit.
    """
    settings = settings or _development_defaults()
    middleware = default_middleware(
        max_retries=settings.retries,
        min_backoff_seconds=settings.min_backoff_seconds,
        max_backoff_seconds=settings.max_backoff_seconds,
        max_payload_bytes=settings.max_payload_bytes,
        task_store=MemoryTasks(),
    )
    built = StubRuntime(
        settings=settings,
        broker=StubBroker(middleware=middleware, fail_fast_default=fail_fast),
        cron=cron_table.build(settings),
    )
    globalbroker.own(built.broker)  # docjobs' broker, as the runtime's factory marks its own
    runtime.install(built)
    return built


def _development_defaults() -> Settings:
    # No variable read: the environment's NEXT_PRIVATE_* are the app's, not this test's.
    # The cross-field checks are those of a provider with a database, which the stub is not.
    return Settings.model_validate({"NODE_ENV": "development"})
