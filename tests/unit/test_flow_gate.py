"""The flow gate frees a slot whose release failed as soon as its store answers again."""

from __future__ import annotations

from typing import Any

import dramatiq
import pytest
from dramatiq.brokers.stub import StubBroker

from docjobs.flow import Concurrency, Debounce
from docjobs.flow.gate import FlowGate, FlowUnavailable
from docjobs.registry import JobActor


class FlakyStore:
    """A store that is down until ``up`` is set; it records the slots held."""

    def __init__(self) -> None:
        self.up = True
        self.slots: set[tuple[str, str, str]] = set()

    def take_slot(self, job: str, key: str, holder: str, *, limit: int, ttl_s: float) -> bool:
        self._check()
        held = {slot for slot in self.slots if slot[:2] == (job, key) and slot[2] != holder}
        if len(held) >= limit:
            return False
        self.slots.add((job, key, holder))
        return True

    def release_slot(self, job: str, key: str, holder: str) -> None:
        self._check()
        self.slots.discard((job, key, holder))

    def _check(self) -> None:
        if not self.up:
            raise ConnectionError("the database is down")

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"not asked of this store: {name}")


def _job(broker: StubBroker) -> JobActor[Any, Any]:
    def one_per_document(*, document_id: int) -> None: ...

    actor = JobActor(
        one_per_document,
        actor_name="unit.flow-gate",
        queue_name="default",
        priority=0,
        options={},
        display_name="x",
        version="1",
        flow={"concurrency": Concurrency(1, key="document_id")},
    )
    broker.declare_actor(actor)
    return actor


def test_a_slot_whose_release_failed_is_freed_by_the_next_job_once_the_store_answers() -> None:
    broker, store = StubBroker(), FlakyStore()
    gate = FlowGate(store)  # type: ignore[arg-type]
    job = _job(broker)
    first = dramatiq.MessageProxy(job.message_with_options(kwargs={"document_id": 9}))
    gate.before_process_message(broker, first)
    assert {("unit.flow-gate", "9", first.message_id)} == store.slots
    store.up = False  # the database went down while the job ran
    gate.after_process_message(broker, first, result=None)
    assert {("unit.flow-gate", "9", first.message_id)} == store.slots  # not freed yet
    store.up = True
    second = dramatiq.MessageProxy(job.message_with_options(kwargs={"document_id": 9}))
    gate.before_process_message(broker, second)  # frees the first job's slot, then takes its own
    assert {("unit.flow-gate", "9", second.message_id)} == store.slots


def test_threads_freeing_the_same_pending_slots_at_once_never_fail() -> None:
    """Two worker threads empty the pending releases together (second outside trial): one takes
    what the other freed meanwhile; neither may fail, or its job would run unchecked."""
    broker, store = StubBroker(), FlakyStore()
    gate = FlowGate(store)  # type: ignore[arg-type]
    release = store.release_slot
    nested: list[bool] = []

    def release_while_another_thread_does(job: str, key: str, holder: str) -> None:
        if not nested:  # as if another thread ran the same loop between this one's steps
            nested.append(True)
            gate._release_pending()
        release(job, key, holder)

    store.release_slot = release_while_another_thread_does  # type: ignore[method-assign]
    store.slots = {("unit.flow-gate", "9", "a"), ("unit.flow-gate", "9", "b")}
    gate._unreleased.extend([("unit.flow-gate", "9", "a"), ("unit.flow-gate", "9", "b")])
    job = _job(broker)
    gate.before_process_message(
        broker, dramatiq.MessageProxy(job.message_with_options(kwargs={"document_id": 1}))
    )
    assert not gate._unreleased


def test_a_gate_that_cannot_ask_its_store_fails_the_attempt_instead_of_running_the_job() -> None:
    broker, store = StubBroker(), FlakyStore()
    gate = FlowGate(store)  # type: ignore[arg-type]
    job = _job(broker)
    store.up = False
    message = dramatiq.MessageProxy(job.message_with_options(kwargs={"document_id": 9}))
    with pytest.raises(FlowUnavailable, match="flow control of unit.flow-gate could not be checked"):
        gate.before_process_message(broker, message)


def test_a_debounced_send_that_cannot_be_noted_is_refused_with_nothing_sent() -> None:
    class DownStore:
        def note_send(self, *args: object, **kwargs: object) -> None:
            raise ConnectionError("the database is down")

    broker = StubBroker()
    gate = FlowGate(DownStore())  # type: ignore[arg-type]

    def reseal(*, document_id: int) -> None: ...

    actor = JobActor(
        reseal, actor_name="unit.flow-debounced", queue_name="default", priority=0, options={},
        display_name="x", version="1", flow={"debounce": Debounce(10, key="document_id")},
    )  # fmt: skip
    broker.declare_actor(actor)
    with pytest.raises(FlowUnavailable, match="could not be noted for its debounce: ConnectionError"):
        gate.before_enqueue(broker, actor.message_with_options(kwargs={"document_id": 9}), None)
