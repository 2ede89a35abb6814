"""``make scale``: drain rate and connections as worker and web processes are added.

Many hosts share one PostgreSQL (and, on bullmq, one Redis). This runs each shape
of processes against one server of each, on this machine: N no-op jobs are queued,
then the processes (``docjobs worker``, and ``docjobs web`` with its embedded worker)
start together and empty the queue. It reports, per shape:

- the drain rate, from the first job leaving the queue to the last one finished;
- the peak of PostgreSQL connections the processes held (sampled from
  ``pg_stat_activity`` every 50 ms), in total and for the busiest process;
- on bullmq, the peak of Redis clients.

On one machine, processes share its cores: the rate stops growing when the cores
are busy, which is the point where more hosts (not more processes) help.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_SECONDS = 0.05
DEADLINE_SECONDS = 600.0
#: (worker processes, web processes) per run.
DEFAULT_SHAPES = ((1, 0), (2, 0), (4, 0), (2, 2))


@dataclass
class Shape:
    workers: int
    webs: int
    drain: float = 0.0
    peak_connections: int = 0
    peak_per_process: int = 0
    peak_redis_clients: int | None = None


@dataclass
class Peaks:
    """The most connections seen at once, in total and held by one application name."""

    total: int = 0
    per_process: int = 0
    redis_clients: int | None = None
    stop: threading.Event = field(default_factory=threading.Event)


def sample_connections(url: str, peaks: Peaks, redis_url: str | None) -> None:
    """Sample ``pg_stat_activity`` (and Redis' client count) until told to stop."""
    client = None
    if redis_url is not None:
        import redis

        client = redis.Redis.from_url(redis_url)
        peaks.redis_clients = 0
    with psycopg.connect(url, autocommit=True) as conn:
        while not peaks.stop.wait(SAMPLE_SECONDS):
            rows = conn.execute(
                "SELECT application_name, count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                " AND backend_type = 'client backend' GROUP BY 1"
            ).fetchall()
            peaks.total = max(peaks.total, sum(int(count) for _, count in rows))
            # Processes that name themselves apart (docjobs-<role>-<host>-<pid>) are counted apart.
            peaks.per_process = max([peaks.per_process, *(int(count) for _, count in rows)])
            if client is not None:
                clients = int(client.info("clients")["connected_clients"]) - 1  # not this sampler
                peaks.redis_clients = max(peaks.redis_clients or 0, clients)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run_shape(
    shape: Shape,
    count: int,
    env: dict[str, str],
    fill: Callable[[], None],
    unfinished: Callable[[], int],
    database_url: str,
    redis_url: str | None,
    log_dir: Path,
) -> None:
    from bench.measure import POLL_SECONDS, start_worker, stop_worker

    fill()
    docjobs = [sys.executable, "-m", "docjobs"]
    commands = [
        [*docjobs, "worker", "bench.actors_docjobs", "--processes", "1", "--threads", "8"]
    ] * shape.workers + [
        [*docjobs, "web", "--actors", "bench.actors_docjobs",
         "--host", "127.0.0.1", "--port", str(free_port())]
        for _ in range(shape.webs)
    ]  # fmt: skip
    peaks = Peaks()
    sampler = threading.Thread(target=sample_connections, args=(database_url, peaks, redis_url), daemon=True)
    sampler.start()
    processes = [start_worker(command, env, log_dir / "scale-processes.log") for command in commands]
    try:
        deadline = time.monotonic() + DEADLINE_SECONDS
        while unfinished() >= count:
            if any(process.poll() is not None for process in processes):
                raise RuntimeError(f"a process exited before draining; see {log_dir / 'scale-processes.log'}")
            if time.monotonic() > deadline:
                raise RuntimeError("no process started")
            time.sleep(POLL_SECONDS)
        started = time.perf_counter()
        while unfinished() > 0:
            if time.monotonic() > deadline:
                raise RuntimeError("the drain did not finish")
            time.sleep(POLL_SECONDS)
        shape.drain = count / (time.perf_counter() - started)
    finally:
        peaks.stop.set()
        sampler.join(5)
        for process in processes:
            stop_worker(process)
    shape.peak_connections, shape.peak_per_process = peaks.total, peaks.per_process
    shape.peak_redis_clients = peaks.redis_clients


def bench_provider(
    provider: str,
    database_url: str,
    redis_url: str,
    count: int,
    shapes: list[Shape],
    log_dir: Path,
) -> list[Shape]:
    import redis

    from docjobs import jobs, runtime
    from docjobs.pdf.identity import write_development_certificate
    from docjobs.settings import Settings

    certificate = log_dir / "bench-signing.p12"
    write_development_certificate(certificate)
    environ = {
        "NEXT_PRIVATE_JOBS_PROVIDER": provider,
        "NEXT_PRIVATE_DATABASE_URL": database_url,
        "NEXT_PRIVATE_REDIS_URL": redis_url,
        "NEXT_PRIVATE_REDIS_PREFIX": "scale",
        "NEXT_PRIVATE_ENCRYPTION_SECONDARY_KEY": "bench-secondary-key",
        "NEXT_PRIVATE_SIGNING_LOCAL_FILE_PATH": str(certificate),
        "NEXT_PRIVATE_INTERNAL_WEBAPP_URL": "http://127.0.0.1:9",
        "NEXT_PRIVATE_JOBS_LOG_LEVEL": "ERROR",
    }
    current = runtime.configure(Settings.from_environ(environ))
    payloads = [{"n": i} for i in range(count)]

    queued = redis.Redis.from_url(redis_url)

    def unfinished() -> int:
        if provider == "bullmq":  # the queue itself: its history is written behind it
            return int(queued.hlen("scale:default.msgs"))
        with psycopg.connect(database_url) as conn:
            row = conn.execute(
                "SELECT count(*) FROM background_job WHERE status IN ('PENDING', 'PROCESSING')"
            ).fetchone()
        return int(row[0]) if row else 0

    def fill() -> None:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("TRUNCATE background_job CASCADE")
        if provider == "bullmq":
            current.broker.flush_all()
        jobs.trigger_many("bench.noop", payloads)

    env = {**os.environ, **environ, "PYTHONPATH": str(ROOT)}
    try:
        from bench import actors_docjobs  # noqa: F401  (declares bench.noop)

        for shape in shapes:
            run_shape(
                shape, count, env, fill, unfinished, database_url,
                redis_url if provider == "bullmq" else None, log_dir,
            )  # fmt: skip
            print(f"{provider}: {shape}", flush=True)
    finally:
        runtime.reset()
    return shapes


def report(provider: str, count: int, shapes: list[Shape]) -> str:
    base = shapes[0].drain or 1.0
    lines = [
        f"{provider}: {count} no-op jobs per run, {os.cpu_count()} cores, one PostgreSQL"
        + (" and one Redis" if provider == "bullmq" else ""),
        "",
        "| workers | webs | drain jobs/s | vs first | peak PG connections | busiest process "
        "| Redis clients |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for shape in shapes:
        clients = "-" if shape.peak_redis_clients is None else str(shape.peak_redis_clients)
        lines.append(
            f"| {shape.workers} | {shape.webs} | {shape.drain:,.0f} | {shape.drain / base:.2f}x "
            f"| {shape.peak_connections} | {shape.peak_per_process} | {clients} |"
        )
    return "\n".join(lines)


def parse_shapes(text: str) -> list[tuple[int, int]]:
    """``"1x0,2x0,2x2"``: workers x webs per run."""
    shapes = []
    for part in text.split(","):
        workers, _, webs = part.strip().partition("x")
        shapes.append((int(workers), int(webs or 0)))
    return shapes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20_000, help="jobs per run (default 20000)")
    parser.add_argument(
        "--shapes",
        type=parse_shapes,
        default=list(DEFAULT_SHAPES),
        help="workers x webs per run, comma-separated (default 1x0,2x0,4x0,2x2)",
    )
    parser.add_argument("--providers", default="local,bullmq", help="default local,bullmq")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args(argv)

    from docjobs_devkit import PostgresServer, RedisServer

    from docjobs.db.migrate import migrate

    args.out.mkdir(parents=True, exist_ok=True)
    postgres = PostgresServer().start()
    redis_server = RedisServer().start()
    tables = []
    try:
        for provider in args.providers.split(","):
            url = postgres.create_database(f"scale_{provider}")
            migrate(url)
            shapes = [Shape(workers, webs) for workers, webs in args.shapes]
            bench_provider(provider, url, redis_server.url, args.jobs, shapes, args.out)
            tables.append(report(provider, args.jobs, shapes))
    finally:
        redis_server.stop()
        postgres.stop()
    text = "\n\n".join(tables)
    print(text)
    (args.out / f"scale-{time.strftime('%Y%m%d-%H%M%S')}.md").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
