"""The fault runs' job, loaded by the worker processes ``bench/chaos.py`` starts.

Every run of a job is written to this process's run log in ``DOCJOBS_CHAOS_DIR``
(one line at its start, one at its end) with plain appends, which a SIGKILL cannot
undo and a database or Redis restart cannot stop: the count of runs per job comes
from these files, not from the systems under test. At import the process also
writes which broker identity it has, so the harness can count what a killed
worker held.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import dramatiq
from dramatiq.middleware import CurrentMessage

import docjobs

RUN_DIR = Path(os.environ["DOCJOBS_CHAOS_DIR"])
#: The error a job made to fail raises, as the harness looks for it.
FAILURE = "chaos: this job was made to fail"


def _identity(broker: dramatiq.Broker) -> str:
    """How the broker knows this process: the ``worker`` row (local) or the ack-set id (Redis)."""
    return str(getattr(broker, "worker_id", None) or getattr(broker, "broker_id", ""))


#: The harness loads this module to send the job: it neither runs jobs nor has a worker identity.
SENDER = os.environ.get("DOCJOBS_CHAOS_SENDER") == "1"
_log = open(os.devnull if SENDER else RUN_DIR / f"runs-{os.getpid()}.log", "a", buffering=1)  # noqa: SIM115
if not SENDER:
    (RUN_DIR / f"worker-{os.getpgid(0)}-{os.getpid()}.id").write_text(_identity(dramatiq.get_broker()))


class ChaosFailure(Exception):
    """What a job made to fail raises."""


@docjobs.actor("chaos.work", display_name="Chaos work", max_retries=1, min_backoff=50, max_backoff=100)
def work(*, n: int, ms: int, fail: bool = False) -> None:
    """Take ``ms`` milliseconds, then succeed, or fail when told to."""
    message = CurrentMessage.get_current_message()
    job_id = message.message_id if message is not None else f"n{n}"
    _log.write(f"start {job_id} {time.time():.6f}\n")
    time.sleep(ms / 1000)
    if fail:
        _log.write(f"fail {job_id} {time.time():.6f}\n")
        raise ChaosFailure(FAILURE)
    _log.write(f"end {job_id} {time.time():.6f}\n")
