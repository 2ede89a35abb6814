"""docs/app-code.md's recipe for Dramatiq's Results (groups, pipelines, store_results), as written there.

Without ``Results`` on docjobs' broker, ``@dramatiq.actor(store_results=True)`` fails at
import ("The following actor options are undefined: store_results").
"""

from __future__ import annotations

from collections.abc import Iterator

import dramatiq
import pytest
from dramatiq.results import Results
from dramatiq.results.backends import StubBackend

import docjobs
from docjobs import registry, runtime, testing

#: The longest a result is waited for: the jobs are in memory and take milliseconds.
RESULT_TIMEOUT_MS = 10_000


@pytest.fixture
def forget_actors() -> Iterator[list[str]]:
    """Names of actors a test declares, forgotten after it (and the runtime reset)."""
    names: list[str] = []
    yield names
    runtime.reset()
    for name in names:
        registry.forget(name)


def test_the_stub_runtime_takes_results_for_groups_and_pipelines(forget_actors: list[str]) -> None:
    with testing.stub_runtime(middleware=[Results(backend=StubBackend())]) as stub:

        @dramatiq.actor(store_results=True, actor_name="unit.results-double")
        def double(x: int) -> int:
            return 2 * x

        @docjobs.actor("unit.results-add", store_results=True)
        def add(x: int, y: int = 0) -> int:
            return x + y

        forget_actors.extend(["unit.results-double", "unit.results-add"])
        worker = dramatiq.Worker(stub.broker, worker_timeout=20)
        worker.start()
        try:
            group = dramatiq.group([double.message(x) for x in range(3)]).run()
            assert [0, 2, 4] == list(group.get_results(block=True, timeout=RESULT_TIMEOUT_MS))
            pipe = dramatiq.pipeline([add.message(1, 2), add.message(y=10)]).run()
            assert 13 == pipe.get_result(block=True, timeout=RESULT_TIMEOUT_MS)
        finally:
            worker.stop()


def test_an_app_adds_results_at_start_before_declaring_its_actors(
    monkeypatch: pytest.MonkeyPatch, forget_actors: list[str]
) -> None:
    # What `docjobs web|worker` sees: the settings in the environment, nothing built yet.
    monkeypatch.setenv("NODE_ENV", "development")
    monkeypatch.setenv("NEXT_PRIVATE_JOBS_PROVIDER", "stub")
    runtime.reset()
    dramatiq.get_broker().add_middleware(Results(backend=StubBackend()))  # myapp/results.py

    @dramatiq.actor(store_results=True, actor_name="unit.results-square")  # myapp/jobs.py
    def square(x: int) -> int:
        return x * x

    forget_actors.append("unit.results-square")
    broker = runtime.current().broker
    worker = dramatiq.Worker(broker, worker_timeout=20)
    worker.start()
    try:
        assert 49 == square.send(7).get_result(block=True, timeout=RESULT_TIMEOUT_MS)
    finally:
        worker.stop()
