"""The queues docjobs' own jobs run on, and how many of each a worker process runs at once.

Slow jobs get queues of their own so they cannot hold every worker thread: a burst of
50-page seals must not delay an invitation email (issue 22). A job type picks its queue
where it is declared::

    from docjobs import queues

    @docjobs.actor("send.team-deleted.email", queue_name=queues.EMAIL_QUEUE)

``NEXT_PRIVATE_JOBS_<QUEUE>_CONCURRENCY`` caps the jobs of a queue that one worker
process holds (waiting in its memory or running); ``DEFAULT_QUEUE_CONCURRENCY`` holds
the caps that apply unless set. A queue without a cap is bounded by the worker's
threads only. Inngest gets the same numbers as function concurrency, shared by the
functions of a queue.

Jobs enqueued on ``default`` before an upgrade still run: every worker consumes
``default`` (the sweeps and cleanups live there), and a worker runs a message by its
actor, whatever queue carried it.
"""

from __future__ import annotations

from collections.abc import Mapping

#: The sweeps, cleanups and anything declared without a queue.
DEFAULT_QUEUE = "default"
#: ``internal.seal-document``: seconds of CPU per document.
SEALING_QUEUE = "sealing"
#: Every ``send.*`` email job.
EMAIL_QUEUE = "emails"
#: ``internal.execute-webhook``: waits on other people's servers.
WEBHOOK_QUEUE = "webhooks"

#: The queues ``NEXT_PRIVATE_JOBS_<QUEUE>_CONCURRENCY`` may name.
QUEUES = (DEFAULT_QUEUE, SEALING_QUEUE, EMAIL_QUEUE, WEBHOOK_QUEUE)

#: Caps that apply unless set: sealing stays below any worker's thread count (8 local,
#: 10 bullmq by default), so other queues always find a thread; a webhook waits up to its
#: time-out on a slow endpoint. Emails and ``default`` are bounded by the threads only.
DEFAULT_QUEUE_CONCURRENCY: dict[str, int] = {SEALING_QUEUE: 2, WEBHOOK_QUEUE: 4}
#: The largest cap a setting may give (as ``NEXT_PRIVATE_JOBS_CONCURRENCY``'s).
MAX_QUEUE_CONCURRENCY = 1024


def variable(queue: str) -> str:
    """The variable that caps ``queue``: ``NEXT_PRIVATE_JOBS_SEALING_CONCURRENCY`` for ``sealing``."""
    return f"NEXT_PRIVATE_JOBS_{queue.upper()}_CONCURRENCY"


def capped_prefetch(caps: Mapping[str, int], queue_name: str, prefetch: int) -> int:
    """What a consumer of ``queue_name`` may hold: Dramatiq's ``prefetch``, within the queue's cap.

    A delay queue (``sealing.DQ``) holds jobs that are not due, which run through their
    queue's consumer: it is not capped.
    """
    cap = caps.get(queue_name)
    return prefetch if cap is None else min(prefetch, cap)
