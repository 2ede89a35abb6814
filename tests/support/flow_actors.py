"""Actors that declare flow control, recording each run in ``test_event`` (see ``actors``)."""

from __future__ import annotations

import time

import docjobs
from docjobs.flow import Concurrency, Debounce, RateLimit, Throttle
from tests.support.actors import record


@docjobs.actor("test.flow-one-per-document", concurrency=Concurrency(1, key="documentId"))
def one_per_document(*, document_id: int, tag: str, seconds: float = 0.3) -> None:
    record(f"{tag}:{document_id}", "started")
    time.sleep(seconds)  # overlapping runs of one document would show in the events
    record(f"{tag}:{document_id}", "finished")


@docjobs.actor("test.flow-throttled", throttle=Throttle(2, period=1, key="tag"))
def throttled(*, tag: str) -> None:
    record(tag, "ran")


@docjobs.actor("test.flow-rate-limited", rate_limit=RateLimit(2, period=600, key="tag"))
def rate_limited(*, tag: str) -> None:
    record(tag, "ran")


@docjobs.actor("test.flow-debounced", debounce=Debounce(period=1, key="tag"))
def debounced(*, tag: str, value: int) -> None:
    record(tag, f"ran:{value}")
