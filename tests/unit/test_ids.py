from __future__ import annotations

import time
import uuid

from docjobs.ids import new_job_id, new_job_ids


def test_job_ids_are_uuid7_and_time_ordered() -> None:
    first = new_job_id()
    time.sleep(0.002)  # ids are ordered by their milliseconds: let one pass
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


def test_a_forked_child_does_not_repeat_its_parents_ids() -> None:
    import os

    new_job_id()  # fill the parent's random pool
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.write(write, new_job_id().encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    assert child[14:] != new_job_id()[14:]
