"""The waits between attempts to reach a server that is down: one schedule for every waiter.

Start-up (:mod:`docjobs.startup`) and the local provider's LISTEN connection both wait
0.5 s after a first failure, doubling up to 30 s, and log one line per step: a database
down for 45 s costs a handful of lines, not one a second.
"""

from __future__ import annotations

from collections.abc import Iterator

#: The wait after the first failed attempt; each later one doubles, up to the cap.
FIRST_RETRY_SECONDS = 0.5
#: The longest wait between two attempts.
MAX_RETRY_SECONDS = 30.0


def retry_delays(
    first_seconds: float = FIRST_RETRY_SECONDS, cap_seconds: float = MAX_RETRY_SECONDS
) -> Iterator[float]:
    """The waits between attempts: ``first_seconds``, doubled each time, at most ``cap_seconds``."""
    delay = first_seconds
    while True:
        yield delay
        delay = min(delay * 2, cap_seconds)
