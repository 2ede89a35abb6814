"""Job actors take Dramatiq's positional shape: callbacks get (message_data, result), pipelines append results.

A payload is checked when its message is built, and again when it is sent if a field
was still missing then (a pipeline step waits for the previous result), so a bad
payload is refused in one line naming the field before anything is enqueued.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import dramatiq
import pytest

import docjobs
from docjobs import registry, testing
from docjobs.errors import PayloadError

#: The longest a join or a result waits: the jobs are in memory and take milliseconds.
JOIN_TIMEOUT_MS = 10_000
#: What the callbacks below were called with.
CALLED: list[tuple[str, Any]] = []


@docjobs.actor("unit.positional-add")
def add(x: int, y: int = 0) -> int:
    return x + y


@docjobs.actor("unit.positional-keywords")
def keywords_only(*, document_id: int) -> int:
    return document_id


@docjobs.actor("unit.positional-succeeded")
def succeeded(message_data: dict[str, Any], result: Any) -> None:
    CALLED.append((message_data["message_id"], result))


@docjobs.actor("unit.positional-total")
def total(value: int) -> None:
    CALLED.append(("total", value))


@pytest.fixture
def stub() -> Iterator[testing.StubRuntime]:
    """The stub runtime with a running worker; both gone after the test."""
    CALLED.clear()
    with testing.stub_runtime() as runtime:
        worker = dramatiq.Worker(runtime.broker, worker_threads=2, worker_timeout=20)
        worker.start()
        try:
            yield runtime
        finally:
            worker.stop(timeout=10_000)


def test_positional_arguments_are_named_in_the_built_message() -> None:
    message = add.message(1, y=2)
    assert () == message.args
    assert {"x": 1, "y": 2} == message.kwargs


def test_an_actor_is_called_with_positional_arguments_as_a_dramatiq_worker_calls_it() -> None:
    assert 3 == add(1, 2)


def test_an_actor_of_keyword_only_parameters_still_refuses_positional_arguments() -> None:
    with pytest.raises(PayloadError, match=r"^unit.positional-keywords: pass the payload as keyword"):
        keywords_only.message(73)  # type: ignore[misc]


def test_more_positional_arguments_than_parameters_are_refused() -> None:
    with pytest.raises(
        PayloadError, match=r"^unit.positional-add: takes at most 2 positional arguments, not 3$"
    ):
        add.message(1, 2, 3)  # type: ignore[call-arg]


def test_a_field_given_by_position_and_by_name_is_refused_naming_it() -> None:
    with pytest.raises(
        PayloadError, match=r"^unit.positional-add: x: given both by position and by name$"
    ) as raised:
        add.message(1, x=2)  # type: ignore[misc]
    assert "x" == raised.value.field


def test_a_wrong_field_is_refused_when_built_even_with_another_missing() -> None:
    with pytest.raises(
        PayloadError, match=r"^unit.positional-add: y: Input should be a valid integer"
    ) as raised:
        add.message(y="ten")  # type: ignore[call-arg, arg-type]
    assert "y" == raised.value.field


def test_a_message_missing_a_field_is_built_as_given_for_a_pipeline_to_complete() -> None:
    message = add.message(y=10)  # type: ignore[call-arg]
    assert ((), {"y": 10}) == (message.args, message.kwargs)


def test_a_message_missing_a_field_is_refused_at_send_and_nothing_is_enqueued(
    stub: testing.StubRuntime,
) -> None:
    with pytest.raises(PayloadError, match=r"^unit.positional-add: x: Field required$") as raised:
        add.send(y=10)  # type: ignore[call-arg]
    assert "x" == raised.value.field
    assert 0 == stub.broker.queues["default"].qsize()


def test_a_pipeline_step_whose_appended_result_is_wrong_is_refused_at_send(stub: testing.StubRuntime) -> None:
    step = add.message(y=10).copy(args=("not a number",))  # type: ignore[call-arg]
    with pytest.raises(PayloadError, match=r"^unit.positional-add: x: Input should be a valid integer"):
        stub.broker.enqueue(step)
    assert 0 == stub.broker.queues["default"].qsize()


def test_a_pipeline_hands_each_result_on_to_the_next_step(stub: testing.StubRuntime) -> None:
    steps = [add.message(1, 2), add.message(y=10), total.message()]  # type: ignore[call-arg]
    dramatiq.pipeline(steps, broker=stub.broker).run()
    stub.broker.join("default", timeout=JOIN_TIMEOUT_MS)
    assert [("total", 13)] == CALLED


def test_an_on_success_callback_gets_the_message_and_its_result(stub: testing.StubRuntime) -> None:
    message = add.send_with_options(kwargs={"x": 41, "y": 1}, on_success=succeeded)
    stub.broker.join("default", timeout=JOIN_TIMEOUT_MS)
    assert [(message.message_id, 42)] == CALLED


def test_the_registry_keeps_the_fields_positional_arguments_fill() -> None:
    assert ("x", "y") == registry.get("unit.positional-add").positional_fields
    assert () == registry.get("unit.positional-keywords").positional_fields
