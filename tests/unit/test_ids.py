from __future__ import annotations

import time
import uuid

from docjobs.ids import new_job_id, new_job_ids


def test_job_ids_are_uuid7_and_time_ordered() -> None:
    first = new_job_id()
    time.sleep(0.002)
    second = new_job_id()
    parsed = uuid.UUID(first)
    assert 7 == parsed.version
    assert uuid.RFC_4122 == parsed.variant
    assert first == str(parsed)
    assert first[:13] < second[:13]


def test_bulk_ids_are_distinct() -> None:
    ids = new_job_ids(10_000)
    assert 10_000 == len(set(ids))
    assert all(7 == uuid.UUID(value).version for value in ids[:100])
