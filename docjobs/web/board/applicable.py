"""Which of the board's actions apply to a job: its state and the provider decide.

The job page offers only these, and the server refuses the others with one line
naming the job's state and what the action works on, before asking the provider
(whose own checks still catch a job that changed state meanwhile).

A completed job is not retried (nothing failed, and on the local provider a rerun in
place would skip its memoised ``run_task`` steps and overwrite the run it records):
"run again" sends a copy of it as a new job, on every provider, as the trigger page would.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from docjobs.brokers.base import Capabilities, JobRef


@dataclass(frozen=True)
class JobAction:
    """One action on a job, as the job page offers it.

    Attributes:
        name: Its URL segment (``jobs/<id>/<name>``) and audit name.
        label: Its button, in an admin's words.
        works_on: The jobs it applies to, for refusals.
        doing: The action done to a job, as refusals say it (``run job {job} now``).
        question: What the page asks first (and the server wants confirmed, by the form's
            ``confirm=yes`` or the API's ``"confirm": true``); ``None`` for an action that
            is done at once. ``{job}`` is the job's name.
    """

    name: str
    label: str
    works_on: str
    doing: str
    question: str | None = None


RETRY = JobAction("retry", "Retry", "a failed or cancelled job", "retry job {job}")
RUN_AGAIN = JobAction(
    "run-again",
    "Run again",
    "a completed job",
    "run job {job} again",
    "Run {job} again as a new job? Its work (emails, webhooks, documents) is done again.",
)
RUN_NOW = JobAction("run-now", "Run now", "a delayed job", "run job {job} now")
CANCEL = JobAction(
    "cancel", "Cancel", "a job that has not started", "cancel job {job}", "Cancel {job}? It will not run."
)
DELETE = JobAction(
    "delete",
    "Delete",
    "a job that is not running",
    "delete job {job}",
    "Delete {job}? This cannot be undone.",
)

#: Every action on one job, in the order the page shows them.
JOB_ACTIONS = {action.name: action for action in (RETRY, RUN_AGAIN, RUN_NOW, CANCEL, DELETE)}
#: Names the API took before, still accepted.
ALIASES = {"promote": "run-now"}
#: Actions that lose something or do a job's work again: the server wants them confirmed.
CONFIRMED = frozenset(name for name, action in JOB_ACTIONS.items() if action.question)
#: How a request confirms, for refusals: the page's forms send it when the admin says yes.
HOW_TO_CONFIRM = '"confirm": true in the API, confirm=yes in a form'


def unconfirmed(what: str) -> str:
    """The refusal of ``what`` (``delete job X``, ``the bulk delete``) sent without its confirmation."""
    return f"{what} must be confirmed ({HOW_TO_CONFIRM}): nothing was done"


def refusal(
    action: JobAction, job: JobRef, capabilities: Capabilities, provider: str, now: datetime
) -> str | None:
    """Why ``action`` does not apply to ``job`` now, in one line; ``None`` when it does."""
    delayed = job.status == "PENDING" and job.run_at is not None and job.run_at > now
    applies = {
        "retry": job.status in ("FAILED", "CANCELLED"),
        "run-again": job.status == "COMPLETED",
        "run-now": delayed,
        "cancel": job.status == "PENDING",
        "delete": job.status != "PROCESSING",
    }[action.name]
    if not applies:
        state = "PENDING and due already" if job.status == "PENDING" and not delayed else job.status
        doing = action.doing.format(job=job.id)
        return f"cannot {doing}: it is {state}; {action.label.lower()} works on {action.works_on}"
    # A waiting job is taken out of the provider's queue: only where the provider can.
    able = {
        "run-now": capabilities.run_now,
        "cancel": capabilities.cancel,
        "delete": capabilities.cancel or job.status != "PENDING",
    }.get(action.name, True)
    if not able:
        return f"{action.label.lower()} is not available on the {provider} provider"
    return None


def offered(job: JobRef, capabilities: Capabilities, provider: str, now: datetime) -> list[JobAction]:
    """The actions that apply to ``job`` now, in page order."""
    return [
        action for action in JOB_ACTIONS.values() if refusal(action, job, capabilities, provider, now) is None
    ]
