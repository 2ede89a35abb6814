"""Keeps a worker's start-up objects out of the garbage collector's full collections.

A worker process imports everything before it runs a job: modules, classes, the
actors, the broker and its pool. Those objects live as long as the process, yet
every full collection (generation 2) walks all of them again, with every thread
stopped. Under ``make load`` such collections held a worker for 66 to 261 ms, and
every job it held or was about to claim waited that long (issue 21). Collected
once and then frozen (:func:`gc.freeze`), they are left out of later collections,
which then walk only what the jobs allocated since.
"""

from __future__ import annotations

import gc
import logging

import dramatiq

logger = logging.getLogger(__name__)


class FreezeBootHeap(dramatiq.Middleware):
    """Collects once, then freezes what is left, when the first Dramatiq worker of a process boots.

    Before its consumers and threads start (``before_worker_boot``): the collection
    itself is a pause (50 to 250 ms measured while the machine was busy), which no
    claimed job should wait through.

    Garbage is collected first, so nothing unreachable is frozen. Frozen objects
    are still freed by reference counting, but a cycle among them never is: so it
    happens once per process (a process that starts worker after worker, as a test
    run does, would otherwise keep every discarded broker), and not when something
    else froze the heap already.
    """

    def before_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        if gc.get_freeze_count():
            return
        gc.collect()
        gc.freeze()
        logger.debug("Froze %d start-up objects out of the garbage collector.", gc.get_freeze_count())
