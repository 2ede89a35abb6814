"""What ``docjobs.log_line`` and ``docjobs.set_progress`` cost a job on the local provider.

Each call is one statement on a pooled connection (``db/joblogs.sql``); this times them
in a job's context against a PostgreSQL server of its own, under the per-job line cap
and past it (where each line also drops the oldest)::

    PYTHONPATH=.:devkit python -m bench.joblog_lines
"""

from __future__ import annotations

import time

import dramatiq
from docjobs_devkit import FAST_SETTINGS, PostgresServer
from dramatiq.middleware import CurrentMessage

import docjobs
from docjobs import joblogs, runtime
from docjobs.brokers.joblogs import writer_of
from docjobs.db.migrate import migrate
from docjobs.settings import Settings

#: Calls timed per case, and the lines a job keeps in each.
CASES = (("under the cap", 1_000), ("past the cap, each line drops one", 3_000))


def main() -> None:
    server = PostgresServer(settings=FAST_SETTINGS).start()
    try:
        url = server.create_database("joblog_bench")
        migrate(url)
        environ = {"NEXT_PRIVATE_DATABASE_URL": url, "NODE_ENV": "development"}
        current = runtime.configure(Settings.from_environ(environ))
        joblogs.sink.set(writer_of(current.broker))  # as a worker thread has it
        for label, calls in CASES:
            message: dramatiq.Message[None] = dramatiq.Message(
                queue_name="default", actor_name="bench", args=(), kwargs={}, options={}, message_id=label
            )
            CurrentMessage._MESSAGE.set(message)
            for _ in range(50):
                docjobs.log_line("warm-up")
            started = time.perf_counter()
            for number in range(calls):
                docjobs.log_line(f"line {number}: imported a contact")
            line_us = (time.perf_counter() - started) / calls * 1e6
            started = time.perf_counter()
            for number in range(calls):
                docjobs.set_progress(number * 100 / calls)
            progress_us = (time.perf_counter() - started) / calls * 1e6
            print(f"{label}: log_line {line_us:.0f} us, set_progress {progress_us:.0f} us ({calls} calls)")
        runtime.reset()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
