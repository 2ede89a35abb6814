"""A queue's cap as Inngest function concurrency (issue 22).

Inngest has no queues: each job is a function. A capped queue's functions share one
concurrency key of scope ``env``, a constant naming the app and the queue, so the cap
bounds the steps running at once across every function of the queue. It spans every
app instance of the environment, where a worker's cap on local and bullmq is per process.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import inngest


def queue_concurrency(app_id: str, queue: str, caps: Mapping[str, int]) -> list[inngest.Concurrency] | None:
    """The concurrency of a function of ``queue``: its cap under a key shared by the queue, or None.

    Args:
        app_id: The Inngest app (two apps of one environment never share a key).
        queue: The actor's queue.
        caps: ``Settings.queue_concurrency``.
    """
    cap = caps.get(queue)
    if cap is None:
        return None
    # An expression that is a string literal: the same key for every run of every function of the queue.
    key = json.dumps(f"{app_id}:{queue}")
    return [inngest.Concurrency(limit=cap, key=key, scope="env")]
