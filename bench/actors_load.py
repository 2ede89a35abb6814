"""``make load``'s job: the fault runs' job, plus a trace of the local provider's claims.

The web app and the workers ``bench/load.py`` starts load this module. Besides the
job's run log (``bench/actors_chaos.py``), each process appends to
``claims-<pid>.log`` in ``DOCJOBS_CHAOS_DIR``, so the harness can split each job's
send-to-start latency into (send -> row visible), (visible -> claimed) and
(claimed -> actor began), and say why a claim happened when it did:

- ``wake <time> <thread>``: a wake-up reached this process's consumers (the
  ``docjobs-listener`` thread for a NOTIFY, a web server thread for the self-trigger);
- ``claim <began> <ended> <limit> <rows> <held> <last wake-up> <job ids>``: one claim,
  with the jobs the consumer held before it and when its wake-up event was last set;
- ``gc <began> <milliseconds> <generation> <objects> <frozen>``: a garbage collection over 2 ms,
  the objects in the generations it scanned and those frozen out of it.

The methods are wrapped from outside (this process only, for the benchmark), so the
provider's code is measured as it ships. Times are ``time.time()``, comparable
between the processes of one machine.
"""

from __future__ import annotations

import gc
import os
import threading
import time
from typing import Any

from bench.actors_chaos import RUN_DIR, SENDER, work
from docjobs.brokers.local import consumer, consumers

__all__ = ["work"]

#: Collections shorter than this are not written down.
GC_TRACE_MS = 2.0

_trace_lock = threading.Lock()
_trace = None if SENDER else open(RUN_DIR / f"claims-{os.getpid()}.log", "a", buffering=1)  # noqa: SIM115


def _write(line: str) -> None:
    if _trace is not None:
        with _trace_lock:
            _trace.write(line + "\n")


def _install() -> None:
    claim = consumer.LocalConsumer._complete_and_claim
    wake = consumers.ConsumerRegistry.wake
    set_wakeup = consumer.Wakeup.set

    def traced_claim(self: consumer.LocalConsumer, acked: list[Any], limit: int) -> list[Any]:
        held, woken, began = self._held, getattr(self.wakeup, "set_at", 0.0), time.time()
        rows = claim(self, acked, limit)
        if limit:
            ids = ",".join(str(row["id"]) for row in rows) or "-"
            _write(f"claim {began:.6f} {time.time():.6f} {limit} {len(rows)} {held} {woken:.6f} {ids}")
        return rows

    def traced_wake(self: consumers.ConsumerRegistry, queue_name: str | None = None) -> None:
        _write(f"wake {time.time():.6f} {threading.current_thread().name.replace(' ', '_')}")
        wake(self, queue_name)

    def traced_set(self: consumer.Wakeup) -> None:
        self.set_at = time.time()  # type: ignore[attr-defined]
        set_wakeup(self)

    consumer.LocalConsumer._complete_and_claim = traced_claim  # type: ignore[method-assign]
    consumers.ConsumerRegistry.wake = traced_wake  # type: ignore[method-assign]
    consumer.Wakeup.set = traced_set  # type: ignore[method-assign]

    started: dict[int, float] = {}

    def traced_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.time()
        elif 0 in started:
            spent_ms = (time.time() - started.pop(0)) * 1000
            if spent_ms >= GC_TRACE_MS:
                # How many objects that collection had to scan, and how many were frozen out of it.
                scanned = len(gc.get_objects(info["generation"])) + info["collected"]
                _write(
                    f"gc {time.time() - spent_ms / 1000:.6f} {spent_ms:.3f} {info['generation']} "
                    f"{scanned} {gc.get_freeze_count()}"
                )

    gc.callbacks.append(traced_gc)


if not SENDER:
    _install()
