"""The benchmark's jobs as docjobs actors (the path app code takes)."""

from __future__ import annotations

import socket
import struct
import time

import docjobs

_probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)


@docjobs.actor("bench.noop", max_retries=0)
def noop(*, n: int = 0) -> None:
    """Do nothing."""


@docjobs.actor("bench.latency", max_retries=0)
def latency(*, sent_at: float, port: int) -> None:
    """Report how long after its send this job started, by UDP."""
    _probe.sendto(struct.pack("!d", time.time() - sent_at), ("127.0.0.1", port))
