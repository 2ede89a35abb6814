"""What the demo tells: this run's jobs, emails and webhooks, streamed or summed up.

The demo keeps its database between runs (the board then shows earlier runs too),
so the report counts only the jobs this run made: the ones that were not among the
newest rows when it started.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from docjobs import runtime

PRINT_INTERVAL_SECONDS = 0.1
#: How many of the newest jobs each look reads; a demo run makes a few dozen.
RECENT_JOBS = 500
#: The demo job that fails its first attempt on purpose, to show a retry.
FAILS_ON_PURPOSE = "demo.flaky"


def short_id(job_id: str) -> str:
    """The distinctive part of a job id: a UUID's last 12 hex digits, any other id whole.

    A UUIDv7 begins with its timestamp, so jobs sent in the same millisecond share
    their first 13 characters; the last 12 digits are random.
    """
    try:
        return uuid.UUID(job_id).hex[-12:]
    except ValueError:
        return job_id


@dataclass(frozen=True)
class Summary:
    """This run's tally."""

    jobs: int
    completed: int
    retried_actors: tuple[str, ...]
    emails: int
    webhooks: int

    @property
    def all_completed(self) -> bool:
        """Every job of this run completed."""
        return self.jobs == self.completed

    def jobs_clause(self) -> str:
        """``22 jobs this run, 22 completed, 0 not completed, 1 retried (...)``."""
        unfinished = self.jobs - self.completed
        clause = f"{self.jobs} jobs this run, {self.completed} completed, {unfinished} not completed"
        if self.retried_actors:
            notes = [
                f"{actor} fails once on purpose" if actor == FAILS_ON_PURPOSE else actor
                for actor in self.retried_actors
            ]
            clause += f", {len(self.retried_actors)} retried ({'; '.join(notes)})"
        return clause


class Reporter:
    """Follows this run's jobs, emails and webhook deliveries from a background thread.

    Args:
        mailbox: The mail catcher, or ``None`` when the mail goes to a server of yours.
        receiver: The webhook receiver.
        stream: Print each job's changes, each email and each delivery as they happen.
    """

    def __init__(self, mailbox: Any, receiver: Any, *, stream: bool) -> None:
        self.mailbox = mailbox
        self.receiver = receiver
        self.stream = stream
        self._earlier: set[str] = set()
        self._states: dict[str, str] = {}
        self._rows: list[dict[str, Any]] = []
        self._emails = 0
        self._webhooks = 0
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="docjobs-demo-reporter", daemon=True)

    def remember_earlier_jobs(self) -> None:
        """Note the jobs already there, before this run sends any: they are not reported."""
        self._earlier = {row["id"] for row in self._recent()}

    def start(self) -> None:
        """Start following."""
        self._thread.start()

    def stop(self) -> None:
        """Take a last look and stop; safe to call twice."""
        if not self._stopping.is_set():
            self._stopping.set()
            if self._thread.is_alive():
                self._thread.join(5.0)
            self._report()

    def summary(self) -> Summary:
        """This run's tally, as of the last look."""
        return Summary(
            jobs=len(self._rows),
            completed=sum(row["status"] == "COMPLETED" for row in self._rows),
            retried_actors=tuple(sorted({row["actor"] for row in self._rows if row["retried"]})),
            emails=self._emails,
            webhooks=self._webhooks,
        )

    def _recent(self) -> Iterable[dict[str, Any]]:
        store = runtime.current().store
        return [] if store is None else store.jobs.recent(RECENT_JOBS)

    def _run(self) -> None:
        while not self._stopping.wait(PRINT_INTERVAL_SECONDS):
            self._report()

    def _report(self) -> None:
        # Newer rows only push older ones out of the newest RECENT_JOBS: whatever is
        # not among the earlier ones was made by this run.
        self._rows = [row for row in self._recent() if row["id"] not in self._earlier]
        for row in self._rows:
            state = f"{row['status']} attempt {row['attempts']}"
            if self._states.get(row["id"]) != state:
                self._states[row["id"]] = state
                failed = row["last_error"] and row["status"] != "COMPLETED"
                error = f"  ({row['last_error']})" if failed else ""
                self._print(f"  job     {short_id(row['id'])}  {row['actor']:<36} {state}{error}")
        if self.mailbox is not None:
            for message in self.mailbox.messages[self._emails :]:
                attached = [part.get_filename() for part in message.iter_attachments()]
                extra = f"  [attached: {', '.join(map(str, attached))}]" if attached else ""
                self._print(f"  email   to {message['To']}: {message['Subject']}{extra}")
                self._emails += 1
        for request in self.receiver.requests[self._webhooks :]:
            self._print(f"  webhook {json.loads(request.body)['event']} delivered (signed)")
            self._webhooks += 1

    def _print(self, line: str) -> None:
        if self.stream:
            print(line, flush=True)
