"""docjobs.log_line and docjobs.set_progress: what they accept, where, and the writer's outage rule."""

from __future__ import annotations

import logging
import math
import threading
from typing import Any

import dramatiq
import psycopg
import pytest
from dramatiq.middleware import CurrentMessage

import docjobs
from docjobs import errors, joblogs, testing
from docjobs.brokers.joblogs import OUTAGE_PAUSE_SECONDS, JobLogWriter

#: What the stub's logging actor got to, by key.
REACHED: dict[str, threading.Event] = {}


@docjobs.actor("unit.logs-in-the-stub", max_retries=0)
def logs_in_the_stub(*, key: str) -> None:
    docjobs.log_line("a line nobody keeps")
    docjobs.set_progress(50)
    REACHED.setdefault(key, threading.Event()).set()


@pytest.mark.parametrize("value", [0, 100, 37.5, {"page": 3, "pages": 50}, {"stage": "seal", "done": [1, 2]}])
def test_progress_accepts_a_number_from_0_to_100_or_a_small_object(value: Any) -> None:
    assert value == __import__("json").loads(joblogs.progress_text(value))


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (-1, "progress must be a number from 0 to 100, not -1"),
        (100.5, "progress must be a number from 0 to 100, not 100.5"),
        (math.nan, "progress must be a number from 0 to 100, not nan"),
        (math.inf, "progress must be a number from 0 to 100, not inf"),
        (True, "progress must be a number from 0 to 100 or a JSON object, not True"),
        ("50", "progress must be a number from 0 to 100 or a JSON object, not str"),
        ([50], "progress must be a number from 0 to 100 or a JSON object, not list"),
        (None, "progress must be a number from 0 to 100 or a JSON object, not NoneType"),
        ({"ratio": math.nan}, "progress is not a JSON object docjobs can keep: nan is not a JSON number"),
        ({1: "one"}, "progress is not a JSON object docjobs can keep: object keys must be strings, not int"),
        (
            {"a": {"b": {"c": {"d": {"e": 1}}}}},
            "progress is not a JSON object docjobs can keep: nested deeper than 4 levels",
        ),
        ({"blob": "x" * 1100}, "progress is 1111 bytes as JSON, over the limit of 1024"),
    ],
)
def test_a_bad_progress_is_refused_at_once_in_one_line_naming_the_problem(value: Any, error: str) -> None:
    with pytest.raises(errors.JobLogError) as refused:
        docjobs.set_progress(value)  # checked before it looks for a job: refused anywhere
    assert error == str(refused.value)
    assert isinstance(refused.value, errors.NotRetryable)  # a job that passes one fails at once


def test_a_line_must_be_a_string() -> None:
    with pytest.raises(errors.JobLogError, match="^log_line takes a string, not bytes$"):
        docjobs.log_line(b"bytes")  # type: ignore[arg-type]


def test_a_long_line_is_cut_and_what_postgresql_cannot_store_is_replaced() -> None:
    long = "y" * (joblogs.MAX_LINE_CHARS + 25)
    assert "y" * joblogs.MAX_LINE_CHARS + "… (25 more characters cut)" == joblogs.clean_line(long)
    assert "a\ufffdb" == joblogs.clean_line("a\x00b")
    assert "lone ? surrogate" == joblogs.clean_line("lone \ud800 surrogate")
    assert "plain" == joblogs.clean_line("plain")


@pytest.mark.parametrize("call", [lambda: docjobs.log_line("hello"), lambda: docjobs.set_progress(5)])
def test_outside_a_job_both_say_so(call: Any) -> None:
    with pytest.raises(errors.JobLogOutsideJob, match=r"^(log_line|set_progress)\(\) was called outside"):
        call()


def test_in_a_job_of_a_provider_without_a_database_they_do_nothing() -> None:
    with testing.stub_runtime() as runtime:
        worker = dramatiq.Worker(runtime.broker, worker_timeout=100)
        worker.start()
        try:
            logs_in_the_stub.send(key="stub")
            runtime.broker.join(logs_in_the_stub.queue_name, timeout=10_000)
        finally:
            worker.stop()
    assert REACHED["stub"].is_set()


class _Rows:
    """Job log rows that fail while ``down`` is set, and count what they were asked."""

    def __init__(self) -> None:
        self.down = False
        self.lines: list[tuple[str, int, str]] = []
        self.calls = 0

    def append(self, job_id: str, attempt: int, line: str, *, max_lines: int, timeout_seconds: float) -> None:
        self.calls += 1
        if self.down:
            raise psycopg.OperationalError("connection to server at 127.0.0.1 failed: Connection refused")
        self.lines.append((job_id, attempt, line))

    def set_progress(self, job_id: str, progress_json: str, *, timeout_seconds: float) -> None:
        self.append(job_id, 0, progress_json, max_lines=0, timeout_seconds=timeout_seconds)


def test_the_writer_drops_lines_during_an_outage_trying_once_per_pause_and_says_so_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [100.0]
    rows = _Rows()
    writer = JobLogWriter(rows, clock=lambda: now[0])
    caplog.set_level(logging.INFO, "docjobs.brokers.joblogs")
    rows.down = True
    for number in range(50):
        writer.append("job", 1, f"line {number}")
    writer.set_progress("job", "50")
    assert 1 == rows.calls  # one try, then nothing until the pause ends
    assert 51 == writer.dropped
    now[0] += OUTAGE_PAUSE_SECONDS + 0.1
    writer.append("job", 1, "still down")
    assert 2 == rows.calls
    rows.down = False
    now[0] += OUTAGE_PAUSE_SECONDS + 0.1
    writer.append("job", 1, "back")
    assert [("job", 1, "back")] == rows.lines
    assert 0 == writer.dropped
    messages = [record.getMessage() for record in caplog.records]
    assert [
        "Job log lines are dropped for 5 s (1 so far): the database failed: "
        "connection to server at 127.0.0.1 failed: Connection refused",
        "Job log lines are dropped for 5 s (52 so far): the database failed: "
        "connection to server at 127.0.0.1 failed: Connection refused",
        "Job log lines are written again; 52 were dropped.",
    ] == messages


def test_the_writer_is_in_each_worker_thread_and_a_job_reaches_it(caplog: pytest.LogCaptureFixture) -> None:
    rows = _Rows()
    writer = JobLogWriter(rows)
    with testing.stub_runtime(middleware=[writer]) as runtime:
        worker = dramatiq.Worker(runtime.broker, worker_timeout=100)
        worker.start()
        try:
            logs_in_the_stub.send(key="written")
            runtime.broker.join(logs_in_the_stub.queue_name, timeout=10_000)
        finally:
            worker.stop()
    assert ["a line nobody keeps", "50"] == [line for _, _, line in rows.lines]
    assert {1, 0} == {attempt for _, attempt, _ in rows.lines}
    assert CurrentMessage.get_current_message() is None


def test_a_line_cannot_pass_for_another_on_the_board() -> None:
    """Terminal escapes and bidirectional overrides are replaced: a line reads as it was written."""
    from docjobs.joblogs import clean_line

    assert "\ufffd[31mred\tand\nnext" == clean_line("\x1b[31mred\tand\nnext")
    assert "user \ufffdtxt.exe" == clean_line("user \u202etxt.exe")
    assert "a\ufffdb\ufffdc" == clean_line("a\u2066b\x85c")
