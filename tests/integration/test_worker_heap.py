"""A worker's start-up objects are left out of full garbage collections (issue 21).

Under ``make load`` a worker process's generation-2 collections walked everything
it had imported and held it for 66 to 261 ms, with the jobs it held waiting.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator

import dramatiq
import pytest

from docjobs.runtime import Runtime
from tests.conftest import provider_overrides


@pytest.fixture
def unfrozen_heap() -> Iterator[None]:
    """This process's heap as a fresh process has it (nothing frozen), and again after the test."""
    gc.unfreeze()
    yield
    gc.unfreeze()


@pytest.mark.usefixtures("unfrozen_heap")
@pytest.mark.parametrize("provider", ["local", "bullmq"])
def test_a_worker_freezes_its_start_up_objects_when_it_boots(
    provider: str,
    request: pytest.FixtureRequest,
    make_runtime: Callable[..., Runtime],
    start_worker: Callable[..., dramatiq.Worker],
) -> None:
    # Both brokers get it from docjobs' default middleware (bullmq's workers held the same
    # start-up heap as local's, and more: redis-py's).
    current = make_runtime(**provider_overrides(request, provider))
    gc.collect()
    before = len(gc.get_objects())
    start_worker(current.broker, threads=1)
    frozen = gc.get_freeze_count()
    # What was alive at boot is frozen (bar what reference counting freed meanwhile), so a
    # full collection walks only what came after.
    assert frozen >= before // 2
    assert len(gc.get_objects()) < frozen


@pytest.mark.usefixtures("unfrozen_heap")
def test_a_process_freezes_its_heap_once(
    pg_runtime: Runtime, start_worker: Callable[..., dramatiq.Worker]
) -> None:
    from docjobs.brokers.heap import FreezeBootHeap

    worker = start_worker(pg_runtime.broker, threads=1)
    frozen = gc.get_freeze_count()
    assert frozen > 0
    # Another worker booting in this process (as in a test run) freezes nothing more: a
    # cycle among frozen objects is never collected. Reference counting may free some.
    freezer = next(m for m in pg_runtime.broker.middleware if isinstance(m, FreezeBootHeap))
    gc.collect()
    freezer.before_worker_boot(pg_runtime.broker, worker)
    assert gc.get_freeze_count() <= frozen
