"""A callback or pipeline step that cannot take Dramatiq's positional arguments is refused at send.

Dramatiq hands a callback ``(message_data, result)`` and a pipeline step the previous
result, positionally, from a worker's after-hook that only logs a failure. A job actor
of keyword-only parameters there used to fail in silence (the callback never sent,
``join`` returning); now the send, or the pipeline's run, is refused in one line and
nothing is enqueued.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import dramatiq
import pytest

import docjobs
from docjobs import testing
from docjobs.errors import PayloadError

#: The longest a join waits: the jobs are in memory and take milliseconds.
JOIN_TIMEOUT_MS = 10_000
#: What the actors below ran with.
RAN: list[tuple[str, Any]] = []


@docjobs.actor("unit.links-work")
def work(*, key: str) -> str:
    RAN.append(("work", key))
    return key


@docjobs.actor("unit.links-notify", on_success="unit.links-keywords")
def notify(*, key: str) -> None:
    RAN.append(("notify", key))


@docjobs.actor("unit.links-keywords")
def keywords_only(*, document_id: int = 0) -> None:
    RAN.append(("keywords", document_id))


@docjobs.actor("unit.links-one")
def one_positional(message_data: dict[str, Any]) -> None:
    RAN.append(("one", message_data))


@docjobs.actor("unit.links-add")
def add(x: int, y: int = 0) -> int:
    RAN.append(("add", x + y))
    return x + y


@pytest.fixture
def stub() -> Iterator[testing.StubRuntime]:
    """The stub runtime; nothing runs its jobs until a test starts a worker."""
    RAN.clear()
    with testing.stub_runtime() as runtime:
        yield runtime


def waiting(runtime: testing.StubRuntime) -> int:
    return sum(queue.qsize() for queue in runtime.broker.queues.values())


@pytest.mark.parametrize(
    ("option", "arguments"),
    [("on_success", "(message_data, result)"), ("on_failure", "(message_data, exception_data)")],
)
def test_a_keyword_only_callback_is_refused_at_send(
    stub: testing.StubRuntime, option: str, arguments: str
) -> None:
    with pytest.raises(PayloadError) as refused:
        work.send_with_options(kwargs={"key": "a"}, **{option: keywords_only})
    assert (
        f"unit.links-work: {option}=unit.links-keywords cannot be its callback: its parameters are "
        f"keyword-only; a callback receives {arguments} positionally"
    ) == str(refused.value)
    assert 0 == waiting(stub)


def test_a_callback_of_one_positional_parameter_is_refused_naming_how_many_it_takes(
    stub: testing.StubRuntime,
) -> None:
    with pytest.raises(
        PayloadError, match=r"on_success=unit.links-one .* takes at most 1 positional argument;"
    ):
        work.send_with_options(kwargs={"key": "a"}, on_success="unit.links-one")
    assert 0 == waiting(stub)


def test_a_keyword_only_callback_declared_on_the_actor_is_refused_at_send(stub: testing.StubRuntime) -> None:
    with pytest.raises(PayloadError, match=r"^unit.links-notify: on_success=unit.links-keywords cannot be"):
        notify.send(key="a")
    assert 0 == waiting(stub)


def test_a_pipeline_with_a_keyword_only_step_is_refused_when_run_naming_the_step(
    stub: testing.StubRuntime,
) -> None:
    pipe = dramatiq.pipeline([work.message(key="a"), add.message(y=1), keywords_only.message()])
    with pytest.raises(PayloadError) as refused:
        pipe.run()
    assert (
        "unit.links-work: pipeline step 3, unit.links-keywords, would receive the previous result as a "
        "positional argument, but its parameters are keyword-only: build its message with "
        "pipe_ignore=True to run it without the result"
    ) == str(refused.value)
    assert 0 == waiting(stub)


def test_a_step_whose_positional_parameter_is_named_already_is_refused_when_run(
    stub: testing.StubRuntime,
) -> None:
    pipe = dramatiq.pipeline([add.message(1), add.message(x=2)])
    with pytest.raises(PayloadError, match=r"step 2, unit.links-add, .* but x is given by name already"):
        pipe.run()
    assert 0 == waiting(stub)


def test_a_keyword_only_step_with_pipe_ignore_runs_after_the_others(stub: testing.StubRuntime) -> None:
    ignoring = keywords_only.message_with_options(kwargs={"document_id": 7}, pipe_ignore=True)
    pipe = dramatiq.pipeline([add.message(1, 2), add.message(y=10), ignoring])
    worker = dramatiq.Worker(stub.broker, worker_timeout=20)
    worker.start()
    try:
        pipe.run()
        stub.broker.join("default", timeout=JOIN_TIMEOUT_MS)
    finally:
        worker.stop()
    assert [("add", 3), ("add", 13), ("keywords", 7)] == RAN
