"""How ``make bench`` measures: rates, drains with the worker's CPU and memory, idle latency.

Every system is measured the same way. A drain is timed from the first job leaving
the queue to the last one done; over that window the bench reads the worker
processes' CPU time (user + system, from the kernel's accounting via psutil) and,
at its end, the resident memory of the process that ran the jobs. Optionally it
also reads the PostgreSQL server's processes, to say how much of a core the
database spent on the drain.
"""

from __future__ import annotations

import os
import signal
import socket
import statistics
import struct
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import psutil

LATENCY_GAP_SECONDS = 0.02
LATENCY_WARMUP = 3
POLL_SECONDS = 0.005
STOP_TIMEOUT_SECONDS = 30
BYTES_PER_MIB = 1024 * 1024
DRAIN_DEADLINE_SECONDS = float(os.environ.get("BENCH_DEADLINE", 600))

T = TypeVar("T")


@dataclass
class Drain:
    """One drain: its rate, the worker's CPU per job and RSS, and the database's CPU share."""

    rate: float
    cpu_us_per_job: float
    rss_mib: float
    server_cpu_share: float | None = None


@dataclass
class Figures:
    """What the bench reports for one system; ``None`` where the system has no such figure."""

    enqueue: float | None = None
    bulk: float | None = None
    drain: float | None = None
    latency_p50: float | None = None
    latency_p99: float | None = None
    rss_mib: float | None = None
    cpu_us_per_job: float | None = None
    server_cpu_share: float | None = None

    def take_drain(self, drain: Drain) -> None:
        """Keep one drain's figures (the median run's) as this system's."""
        self.drain = drain.rate
        self.cpu_us_per_job = drain.cpu_us_per_job
        self.rss_mib = drain.rss_mib
        self.server_cpu_share = drain.server_cpu_share


def timed_rate(count: int, action: Callable[[], object]) -> float:
    """``count`` divided by the seconds ``action`` took."""
    started = time.perf_counter()
    action()
    return count / (time.perf_counter() - started)


def median_of(repeats: int, measure: Callable[[], float]) -> float:
    """The median of ``repeats`` measurements: one noisy sample says little here."""
    return statistics.median(measure() for _ in range(repeats))


def median_run(repeats: int, measure: Callable[[], Drain]) -> Drain:
    """The drain whose rate is the median of ``repeats`` runs, with that run's CPU and RSS."""
    runs = sorted((measure() for _ in range(repeats)), key=lambda drain: drain.rate)
    return runs[(len(runs) - 1) // 2]


def process_tree(pid: int) -> list[psutil.Process]:
    """A process and all its descendants (a worker command forks its worker processes)."""
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def cpu_seconds(processes: Iterable[psutil.Process]) -> dict[int, float]:
    """User + system CPU seconds of each process still alive, by pid."""
    seconds = {}
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        seconds[process.pid] = times.user + times.system
    return seconds


def cpu_spent(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds spent between two readings; a process born in between counts from zero."""
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


def postgres_server_pid(url: str) -> int:
    """The postmaster's pid: the parent of this connection's backend."""
    import psycopg

    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
        assert row is not None
        # Asked while the connection is open: its backend exits as soon as it closes.
        parent: int = psutil.Process(int(row[0])).ppid()
    return parent


def measure_drain(
    count: int,
    remaining: Callable[[], int],
    worker: subprocess.Popen[bytes],
    server_pid: int | None = None,
) -> Drain:
    """Time the drain of ``count`` queued jobs by ``worker`` and read its CPU and memory.

    The window opens when the first job leaves the queue (the worker's boot and imports
    are outside it) and closes when ``remaining()`` reaches zero. The RSS is that of the
    worker process that spent the most CPU in the window: the one running the jobs.
    """
    deadline = time.monotonic() + DRAIN_DEADLINE_SECONDS
    while remaining() >= count:
        if worker.poll() is not None:
            raise RuntimeError("the worker exited before draining")
        if time.monotonic() > deadline:
            raise RuntimeError("the worker never started")
        time.sleep(POLL_SECONDS)
    workers = process_tree(worker.pid)
    server = process_tree(server_pid) if server_pid else []
    worker_before, server_before = cpu_seconds(workers), cpu_seconds(server)
    started = time.perf_counter()
    while remaining() > 0:
        if time.monotonic() > deadline:
            raise RuntimeError("the drain did not finish")
        time.sleep(POLL_SECONDS)
    wall = time.perf_counter() - started
    worker_after = cpu_seconds(workers)
    server_after = cpu_seconds(process_tree(server_pid)) if server_pid else {}
    busiest = max(worker_after, key=lambda pid: worker_after[pid] - worker_before.get(pid, 0.0))
    return Drain(
        rate=count / wall,
        cpu_us_per_job=cpu_spent(worker_before, worker_after) / count * 1e6,
        rss_mib=psutil.Process(busiest).memory_info().rss / BYTES_PER_MIB,
        server_cpu_share=cpu_spent(server_before, server_after) / wall if server_pid else None,
    )


def measure_latency(samples: int, send: Callable[[float, int], object]) -> tuple[float, float]:
    """p50 and p99 in milliseconds of send-to-start, one job at a time at idle.

    The first probes only prove the worker is up (it may still be booting); they
    are not counted.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        probe.settimeout(60)
        port = probe.getsockname()[1]
        latencies = []
        for index in range(LATENCY_WARMUP + samples):
            send(time.time(), port)
            (seconds,) = struct.unpack("!d", probe.recv(8))
            if index >= LATENCY_WARMUP:
                latencies.append(seconds * 1000)
            time.sleep(LATENCY_GAP_SECONDS)
    latencies.sort()
    return statistics.median(latencies), latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]


def start_worker(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Start a worker command in its own session (so that it stops with all it forked)."""
    with open(log, "ab") as output:
        return subprocess.Popen(
            command, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )


def stop_worker(worker: subprocess.Popen[bytes]) -> None:
    """SIGTERM the worker's process group; SIGKILL it if it is not gone in 30 s."""
    if worker.poll() is None:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()


def drain_with(
    command: list[str],
    env: dict[str, str],
    log: Path,
    count: int,
    remaining: Callable[[], int],
    server_pid: int | None = None,
) -> Drain:
    """Start ``command`` on a filled queue, measure its drain, stop it."""
    worker = start_worker(command, env, log)
    try:
        return measure_drain(count, remaining, worker, server_pid)
    finally:
        stop_worker(worker)


def wait_idle(remaining: Callable[[], int]) -> None:
    """Wait for the queue to empty, then let the consumers go back to sleep."""
    deadline = time.monotonic() + DRAIN_DEADLINE_SECONDS
    while remaining() > 0:
        if time.monotonic() > deadline:
            raise RuntimeError("the queue never emptied")
        time.sleep(POLL_SECONDS)
    time.sleep(0.5)  # latency is measured at idle


def idle_latency(
    command: list[str],
    env: dict[str, str],
    log: Path,
    unfinished: Callable[[], int],
    samples: int,
    send: Callable[[float, int], object],
) -> tuple[float, float]:
    """p50 and p99 send-to-start latency, in ms, of a worker process left idle first."""
    worker = start_worker(command, env, log)
    try:
        wait_idle(unfinished)
        return measure_latency(samples, send)
    finally:
        stop_worker(worker)
