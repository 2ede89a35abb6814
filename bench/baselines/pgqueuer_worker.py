"""A pgqueuer worker for ``make bench``: one process, one asyncio event loop, batches of 10, asyncpg.

``python -m bench.baselines.pgqueuer_worker`` with ``BENCH_PGQUEUER_URL`` set. pgqueuer
runs async jobs on one event loop (one thread): it fetches up to ``batch_size`` jobs
per dequeue and runs them as concurrent tasks, where a Dramatiq worker runs 8 threads.
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct
import time

import asyncpg
import orjson
from pgqueuer import AsyncpgDriver, QueueManager
from pgqueuer.models import Job
from pgqueuer.queries import Queries

BATCH_SIZE = 10

_probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)


async def main(url: str) -> None:
    """Run ``noop`` and ``latency`` jobs until the process is stopped."""
    connection = await asyncpg.connect(url)
    manager = QueueManager(Queries(AsyncpgDriver(connection)))

    @manager.entrypoint("noop")
    async def noop(job: Job) -> None:
        """Do nothing."""

    @manager.entrypoint("latency")
    async def latency(job: Job) -> None:
        """Report how long after its send this job started, by UDP."""
        probe = orjson.loads(job.payload or b"{}")
        _probe.sendto(struct.pack("!d", time.time() - probe["sent_at"]), ("127.0.0.1", probe["port"]))

    await manager.run(batch_size=BATCH_SIZE)


if __name__ == "__main__":
    asyncio.run(main(os.environ["BENCH_PGQUEUER_URL"]))
