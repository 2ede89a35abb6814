"""What an Inngest function call did, as the worker's log lines and, with a history, job rows.

A job's outcome is written to its row before the call that ends it is answered.
"""

from __future__ import annotations

import logging
import traceback
from typing import Any

import dramatiq
import psycopg

from docjobs.brokers.history import JobHistory
from docjobs.db.history import JobStanding

#: What the log says comes after a failed attempt that Inngest tries again.
RETRIED = "Inngest retries it"
#: The frames of a failure's traceback kept in its message options (Dramatiq's Retries keeps 30).
TRACEBACK_FRAMES = 30


class Recorder:
    """A function's outcomes as log lines and, with a history, rows of ``background_job``.

    The lines are the worker's (``JobLog``) for a job's end; there is no start line,
    since Inngest calls a function again for each step and a line per call would
    say the job started several times.

    Args:
        history: Where the jobs' rows are written; ``None`` writes none.
        broker: The broker the actors are declared on (the history's hooks take it).
        log: The logger the lines go to.
    """

    def __init__(
        self, history: JobHistory | None, broker: dramatiq.Broker | None, log: logging.Logger
    ) -> None:
        self.log = log
        # The history's hooks need the broker the actors are declared on.
        self.history = (history, broker) if history is not None and broker is not None else None

    def started(self, proxy: dramatiq.MessageProxy) -> None:
        if self.history is not None:
            history, broker = self.history
            history.before_process_message(broker, proxy)

    def skipped(self, proxy: dramatiq.MessageProxy) -> None:
        """Skipped as too old (``max_age``): FAILED, as a worker records it."""
        self.log.warning(
            "Job %s (%s) skipped: older than its max_age.",
            proxy.message_id,
            proxy.actor_name,
            extra=_fields(proxy, "job_skipped"),
        )
        if self.history is not None:
            history, broker = self.history
            history.after_skip_message(broker, proxy)
            _written_before_answer(history)

    def dropped(self, proxy: dramatiq.MessageProxy, why: str) -> None:
        """Dropped by its flow control without running: COMPLETED, as a worker's gate records it."""
        self.log.info(
            "Job %s (%s) dropped without running: %s.",
            proxy.message_id,
            proxy.actor_name,
            why,
            extra=_fields(proxy, "job_flow_dropped"),
        )
        if self.history is not None:
            history, broker = self.history
            history.after_skip_message(broker, proxy)
            _written_before_answer(history)

    def finished(self, proxy: dramatiq.MessageProxy, result: Any) -> None:
        self.log.info(
            "Job %s (%s) completed, attempt %d.",
            proxy.message_id,
            proxy.actor_name,
            _attempt(proxy),
            extra=_fields(proxy, "job_completed"),
        )
        if self.history is not None:
            history, broker = self.history
            history.after_process_message(broker, proxy, result=result)
            _written_before_answer(history)

    def standing(self, job_id: str) -> JobStanding | None:
        """Where the job stands in ``background_job``, once this process's events of it are written.

        Raises:
            psycopg.Error: The database cannot be reached (the call fails, and Inngest retries it).
        """
        assert self.history is not None
        history, _ = self.history
        history.flush()
        return history.store.history.standing(job_id)

    def closed(self, message: dramatiq.Message[Any], status: str, reason: str) -> bool:
        """End the job with ``status`` and ``reason`` unless it ended already; whether it was open."""
        assert self.history is not None
        history, _ = self.history
        closed = history.store.history.close(message.message_id, status, reason)
        self.log.log(
            logging.INFO if closed else logging.DEBUG,  # a warning came already if the job itself failed
            "Job %s (%s): %s%s.",
            message.message_id,
            message.actor_name,
            reason,
            "" if closed else "; it had ended already, and keeps its end",
            extra={"action": f"job_{status.lower()}_in_inngest", "message_id": message.message_id,
                   "actor": message.actor_name},
        )  # fmt: skip
        return closed

    def failed(
        self, proxy: dramatiq.MessageProxy, exc: BaseException, *, final: bool = False, then: str = RETRIED
    ) -> None:
        """FAILED when Inngest will not try again, else PENDING with the error (``then`` says what comes)."""
        self.log.log(
            logging.WARNING if final else logging.INFO,
            "Job %s (%s) raised %s on attempt %d%s.",
            proxy.message_id,
            proxy.actor_name,
            type(exc).__name__,
            _attempt(proxy),
            ", no retry left" if final else f"; {then}",
            extra=_fields(proxy, "job_failed_permanently" if final else "job_raised"),
        )
        if self.history is None:
            return
        history, broker = self.history
        trace = traceback.format_exc(limit=TRACEBACK_FRAMES)
        if final:
            proxy.options["traceback"] = trace
            proxy.fail()
            history.after_process_message(broker, proxy, exception=exc)
            _written_before_answer(history)
            return
        retry = proxy.copy(options={"retries": _attempt(proxy), "traceback": trace})
        history.after_enqueue(broker, retry, None)


def _written_before_answer(history: JobHistory) -> None:
    """Write a job's end now: once Inngest has the answer, a killed process must not lose it.

    While the database is away the answer goes anyway (the writer keeps the event):
    holding it would make Inngest run the job again.
    """
    try:
        history.flush()
    except psycopg.Error:
        pass  # said by the history, which keeps the events for its next round


def _attempt(proxy: dramatiq.MessageProxy) -> int:
    return int(proxy.options.get("retries", 0)) + 1


def _fields(proxy: dramatiq.MessageProxy, action: str) -> dict[str, Any]:
    return {"action": action, "message_id": proxy.message_id, "actor": proxy.actor_name}
