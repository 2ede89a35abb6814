"""The inngest functions' view of the queues paused on the board."""

from __future__ import annotations

import psycopg
import pytest

from docjobs.brokers.inngest import waits
from docjobs.brokers.inngest.waits import PausedQueues


def test_the_paused_queues_are_read_at_most_once_a_second_unless_asked_fresh() -> None:
    reads = [frozenset({"emails"}), frozenset()]
    paused = PausedQueues(lambda: reads.pop(0))
    assert paused("emails")
    assert paused("emails")  # cached: the second read has not happened
    assert not paused("emails", fresh=True)
    assert [] == reads


def test_a_failed_read_keeps_the_last_state_instead_of_failing_the_job(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(waits, "PAUSED_CACHE_SECONDS", 0.0)
    answers: list[frozenset[str] | Exception] = [
        frozenset({"emails"}),
        psycopg.OperationalError("connection refused"),
        frozenset(),
    ]

    def read() -> frozenset[str]:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    paused = PausedQueues(read)
    assert paused("emails")
    assert paused("emails")  # the database is away: still paused, as last read
    assert "Could not read the paused queues" in caplog.text
    assert not paused("emails")  # back: resumed
