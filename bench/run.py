"""``make bench``: measure docjobs' local provider and Dramatiq's stock RedisBroker in one run.

Both run on this machine, against servers this script starts: PostgreSQL with its
durable defaults (fsync on), Redis without persistence (its default deployment for
Dramatiq). For each broker:

- enqueue: N single sends from one thread;
- bulk enqueue: N jobs in one call (``jobs.trigger_many``; Dramatiq has no bulk API,
  so its baseline is ``group(...).run()``);
- drain: N no-op jobs queued, then one worker process with 8 threads empties the
  queue (``docjobs worker`` / ``dramatiq``), timed from its first claim to the last ack;
- latency: at idle, one job at a time, from ``send()`` to the actor starting, reported
  by the actor over UDP.

Ratios compare docjobs with the baseline measured seconds earlier on the same
machine; absolute numbers move with the machine's load, ratios much less.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import statistics
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parent.parent
TARGETS = {
    "enqueue": ("jobs/s", ">=", 2000.0),
    "bulk": ("jobs/s", ">=", 30000.0),
    "latency_p50": ("ms", "<=", 5.0),
    "latency_p99": ("ms", "<=", 20.0),
}
LATENCY_GAP_SECONDS = 0.02
LATENCY_WARMUP = 3
POLL_SECONDS = 0.005


@dataclass
class Figures:
    enqueue: float = 0.0
    enqueue_durable: float | None = None
    bulk: float = 0.0
    drain: float = 0.0
    latency_p50: float = 0.0
    latency_p99: float = 0.0


def timed_rate(count: int, action: Callable[[], None]) -> float:
    started = time.perf_counter()
    action()
    return count / (time.perf_counter() - started)


def measure_drain(count: int, remaining: Callable[[], int], worker: subprocess.Popen[bytes]) -> float:
    """Jobs per second from the first job leaving the queue to the last one acked."""
    deadline = time.monotonic() + float(os.environ.get("BENCH_DEADLINE", 600))
    while remaining() >= count:
        if worker.poll() is not None:
            raise RuntimeError("the worker exited before draining")
        if time.monotonic() > deadline:
            raise RuntimeError("the worker never started")
        time.sleep(POLL_SECONDS)
    started = time.perf_counter()
    while remaining() > 0:
        if time.monotonic() > deadline:
            raise RuntimeError("the drain did not finish")
        time.sleep(POLL_SECONDS)
    return count / (time.perf_counter() - started)


def measure_latency(samples: int, send: Callable[[float, int], None]) -> tuple[float, float]:
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
    with open(log, "ab") as output:
        return subprocess.Popen(
            command, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )


def stop_worker(worker: subprocess.Popen[bytes]) -> None:
    if worker.poll() is None:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()


def wait_idle(remaining: Callable[[], int]) -> None:
    while remaining() > 0:
        time.sleep(POLL_SECONDS)
    time.sleep(0.5)  # let the consumers go back to sleep: latency is measured at idle


def median_of(repeats: int, measure: Callable[[], float]) -> float:
    """The median of ``repeats`` measurements: one noisy sample says little here."""
    return statistics.median(measure() for _ in range(repeats))


def idle_latency(
    command: list[str],
    env: dict[str, str],
    log: Path,
    unfinished: Callable[[], int],
    samples: int,
    send: Callable[[float, int], None],
) -> tuple[float, float]:
    """p50 and p99 send-to-start latency, in ms, of a worker process left idle first."""
    worker = start_worker(command, env, log)
    try:
        wait_idle(unfinished)
        return measure_latency(samples, send)
    finally:
        stop_worker(worker)


def bench_docjobs(url: str, count: int, samples: int, repeats: int, log_dir: Path) -> Figures:
    from docjobs import jobs, runtime
    from docjobs.pdf.identity import write_development_certificate
    from docjobs.settings import Settings

    certificate = log_dir / "bench-signing.p12"
    write_development_certificate(certificate)
    environ = {
        "NEXT_PRIVATE_DATABASE_URL": url,
        "NEXT_PRIVATE_ENCRYPTION_SECONDARY_KEY": "bench-secondary-key",
        "NEXT_PRIVATE_SIGNING_LOCAL_FILE_PATH": str(certificate),
        # No web app runs during the benchmark: self-requests are refused at once.
        "NEXT_PRIVATE_INTERNAL_WEBAPP_URL": "http://127.0.0.1:9",
        "NEXT_PRIVATE_JOBS_LOG_LEVEL": "ERROR",
    }
    settings = Settings.from_environ(environ)
    runtime.configure(settings)
    from bench import actors_docjobs

    def unfinished() -> int:
        with psycopg.connect(url) as conn:
            row = conn.execute(
                "SELECT count(*) FROM background_job WHERE status IN ('PENDING', 'PROCESSING')"
            ).fetchone()
        return int(row[0]) if row else 0

    def truncate() -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("TRUNCATE background_job CASCADE")
            conn.execute("VACUUM ANALYZE background_job")

    def sends(total: int) -> Callable[[], float]:
        def measure() -> float:
            truncate()

            def send_all() -> None:
                for i in range(total):
                    actors_docjobs.noop.send(n=i)

            return timed_rate(total, send_all)

        return measure

    def bulk() -> float:
        truncate()
        return timed_rate(count, lambda: jobs.trigger_many("bench.noop", payloads) and None)

    env = {**os.environ, **environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "docjobs", "worker", "bench.actors_docjobs", "--threads", "8"]

    def drain() -> float:
        bulk()
        worker = start_worker(command, env, log_dir / "docjobs-worker.log")
        try:
            return measure_drain(count, unfinished, worker)
        finally:
            stop_worker(worker)

    for i in range(200):  # warm up connections and prepared statements
        actors_docjobs.noop.send(n=i)
    payloads = [{"n": i} for i in range(count)]
    figures = Figures()
    figures.enqueue = median_of(repeats, sends(count))
    runtime.configure(settings.replace(synchronous_commit=True))
    figures.enqueue_durable = median_of(repeats, sends(min(count, 5000)))
    runtime.configure(settings)
    figures.bulk = median_of(repeats, bulk)
    figures.drain = median_of(repeats, drain)
    truncate()
    try:
        figures.latency_p50, figures.latency_p99 = idle_latency(
            command, env, log_dir / "docjobs-worker.log", unfinished, samples,
            lambda sent_at, port: actors_docjobs.latency.send(sent_at=sent_at, port=port) and None,
        )  # fmt: skip
    finally:
        runtime.reset()
    return figures


def bench_redis(url: str, count: int, samples: int, repeats: int, log_dir: Path) -> Figures:
    import dramatiq
    import redis
    from dramatiq.brokers.redis import RedisBroker

    broker = RedisBroker(url=url)
    dramatiq.set_broker(broker)
    from bench import actors_dramatiq

    client = redis.Redis.from_url(url)

    def unfinished() -> int:
        return int(client.hlen("dramatiq:default.msgs"))

    def sends() -> float:
        broker.flush_all()

        def send_all() -> None:
            for i in range(count):
                actors_dramatiq.noop.send(i)

        return timed_rate(count, send_all)

    def bulk() -> float:
        broker.flush_all()
        messages = [actors_dramatiq.noop.message(i) for i in range(count)]
        return timed_rate(count, lambda: dramatiq.group(messages).run() and None)

    env = {**os.environ, "BENCH_REDIS_URL": url, "PYTHONPATH": str(ROOT)}
    command = [
        sys.executable, "-m", "dramatiq", "bench.redis_broker", "bench.actors_dramatiq",
        "--processes", "1", "--threads", "8",
    ]  # fmt: skip

    def drain() -> float:
        bulk()
        worker = start_worker(command, env, log_dir / "redis-worker.log")
        try:
            return measure_drain(count, unfinished, worker)
        finally:
            stop_worker(worker)

    for i in range(200):
        actors_dramatiq.noop.send(i)
    figures = Figures()
    figures.enqueue = median_of(repeats, sends)
    figures.bulk = median_of(repeats, bulk)
    figures.drain = median_of(repeats, drain)
    broker.flush_all()
    try:
        figures.latency_p50, figures.latency_p99 = idle_latency(
            command, env, log_dir / "redis-worker.log", unfinished, samples,
            lambda sent_at, port: actors_dramatiq.latency.send(sent_at, port) and None,
        )  # fmt: skip
    finally:
        broker.close()
    return figures


def bench_bullmq(
    database_url: str, redis_url: str, count: int, samples: int, repeats: int, log_dir: Path
) -> Figures:
    """docjobs' bullmq provider, job history on, with the same jobs and worker shape as the baseline."""
    import redis

    from docjobs import runtime
    from docjobs.settings import Settings

    prefix = "benchbullmq"
    environ = {
        "NEXT_PRIVATE_JOBS_PROVIDER": "bullmq",
        "NEXT_PRIVATE_REDIS_URL": redis_url,
        "NEXT_PRIVATE_REDIS_PREFIX": prefix,
        "NEXT_PRIVATE_DATABASE_URL": database_url,
        "NEXT_PRIVATE_ENCRYPTION_SECONDARY_KEY": "bench-secondary-key",
        "NEXT_PRIVATE_SIGNING_LOCAL_FILE_PATH": str(log_dir / "bench-signing.p12"),
        "NEXT_PRIVATE_JOBS_LOG_LEVEL": "ERROR",
    }
    current = runtime.configure(Settings.from_environ(environ))
    from bench import actors_docjobs

    client = redis.Redis.from_url(redis_url)

    def unfinished() -> int:
        return int(client.hlen(f"{prefix}:default.msgs"))

    def fill() -> float:
        current.broker.flush_all()

        def send_all() -> None:
            for i in range(count):
                actors_docjobs.noop.send(n=i)

        return timed_rate(count, send_all)

    env = {**os.environ, **environ, "PYTHONPATH": str(ROOT)}
    command = [
        sys.executable, "-m", "docjobs", "worker", "bench.actors_docjobs", "--threads", "8",
    ]  # fmt: skip

    def drain() -> float:
        fill()
        worker = start_worker(command, env, log_dir / "bullmq-worker.log")
        try:
            return measure_drain(count, unfinished, worker)
        finally:
            stop_worker(worker)

    figures = Figures()
    figures.enqueue = median_of(repeats, fill)
    figures.drain = median_of(repeats, drain)
    current.broker.flush_all()
    try:
        figures.latency_p50, figures.latency_p99 = idle_latency(
            command, env, log_dir / "bullmq-worker.log", unfinished, samples,
            lambda sent_at, port: actors_docjobs.latency.send(sent_at=sent_at, port=port) and None,
        )  # fmt: skip
    finally:
        runtime.reset()
    return figures


def report_bullmq(bullmq: Figures, baseline: Figures) -> str:
    """The bullmq provider's table: the issue's targets are the drain ratio and idle p99."""
    rows = [
        (
            "single-send enqueue, jobs/s",
            bullmq.enqueue,
            baseline.enqueue,
            bullmq.enqueue / baseline.enqueue,
            "-",
        ),
        (
            "drain, 1 process x 8 threads, jobs/s",
            bullmq.drain,
            baseline.drain,
            bullmq.drain / baseline.drain,
            "yes (>= 1.0x)" if bullmq.drain >= baseline.drain else "NO (>= 1.0x)",
        ),
        (
            "latency p50, ms",
            bullmq.latency_p50,
            baseline.latency_p50,
            baseline.latency_p50 / bullmq.latency_p50,
            "-",
        ),
        (
            "latency p99, ms",
            bullmq.latency_p99,
            baseline.latency_p99,
            baseline.latency_p99 / bullmq.latency_p99,
            "yes (<= 50 ms)" if bullmq.latency_p99 <= 50 else "NO (<= 50 ms)",
        ),
    ]
    lines = [
        "bullmq provider (job history on) against the same stock RedisBroker:",
        "",
        f"| {'metric':<40} | {'docjobs bullmq':>14} | {'RedisBroker':>12} | {'ratio':>7} | target met |",
        f"|{'-' * 42}|{'-' * 16}:|{'-' * 13}:|{'-' * 8}:|------------|",
    ]
    for name, ours, theirs, rate, verdict in rows:
        lines.append(f"| {name:<40} | {ours:>14,.1f} | {theirs:>12,.1f} | {rate:>6.2f}x | {verdict} |")
    return "\n".join(lines)


def bench_seal() -> dict[str, Any]:
    """Seal timings and peak memory, measured in a fresh process."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "seal.py")], env=env, capture_output=True, text=True, check=True
    )
    figures: dict[str, Any] = json.loads(result.stdout)
    return figures


def report(docjobs: Figures, baseline: Figures, count: int, repeats: int, seal: dict[str, Any]) -> str:
    def check(metric: str, value: float) -> str:
        if metric == "drain":
            return "yes" if value >= baseline.drain else "NO"
        unit, op, target = TARGETS[metric]
        met = value >= target if op == ">=" else value <= target
        return f"{'yes' if met else 'NO'} ({op} {target:g} {unit})"

    def ratio(ours: float, theirs: float, lower_is_better: bool = False) -> str:
        if not theirs or not ours:
            return "-"
        return f"{(theirs / ours if lower_is_better else ours / theirs):.2f}x"

    rows = [
        (
            "single-send enqueue, jobs/s",
            docjobs.enqueue,
            baseline.enqueue,
            ratio(docjobs.enqueue, baseline.enqueue),
            check("enqueue", docjobs.enqueue),
        ),
        ("  same, synchronous_commit=on, jobs/s", docjobs.enqueue_durable or 0.0, None, "-", "-"),
        (
            "bulk enqueue, jobs/s",
            docjobs.bulk,
            baseline.bulk,
            ratio(docjobs.bulk, baseline.bulk),
            check("bulk", docjobs.bulk),
        ),
        (
            "drain, 1 process x 8 threads, jobs/s",
            docjobs.drain,
            baseline.drain,
            ratio(docjobs.drain, baseline.drain),
            f"{check('drain', docjobs.drain)} (>= 1.0x)",
        ),
        (
            "latency p50, ms",
            docjobs.latency_p50,
            baseline.latency_p50,
            ratio(docjobs.latency_p50, baseline.latency_p50, lower_is_better=True),
            check("latency_p50", docjobs.latency_p50),
        ),
        (
            "latency p99, ms",
            docjobs.latency_p99,
            baseline.latency_p99,
            ratio(docjobs.latency_p99, baseline.latency_p99, lower_is_better=True),
            check("latency_p99", docjobs.latency_p99),
        ),
    ]
    lines = [
        f"docjobs bench: {count} jobs per run, median of {repeats} runs, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, PostgreSQL durable defaults, Redis without persistence",
        "",
        f"| {'metric':<40} | {'docjobs local':>14} | {'RedisBroker':>12} | {'ratio':>7} | target met |",
        f"|{'-' * 42}|{'-' * 16}:|{'-' * 13}:|{'-' * 8}:|------------|",
    ]
    for name, ours, theirs, rate, verdict in rows:
        theirs_text = f"{theirs:,.1f}" if theirs is not None else "-"
        lines.append(f"| {name:<40} | {ours:>14,.1f} | {theirs_text:>12} | {rate:>7} | {verdict} |")
    lines.append("")
    lines.append(
        "ratio: docjobs / RedisBroker for rates, RedisBroker / docjobs for latencies (higher is better)."
    )
    lines.append("")
    lines.append(
        f"seal, {seal['pages']} pages, {seal['fields']} fields: {seal['seconds']:.2f} s warm (median of 3), "
        f"{seal['first_seconds']:.2f} s cold; peak RSS {seal['peak_rss_mb']:.0f} MB, Python peak "
        f"{seal['python_peak_mb']:.1f} MB; {seal['output_bytes'] / 1024:.0f} KiB out; target < 5 s: "
        f"{'yes' if seal['first_seconds'] < 5 else 'NO'}"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20_000, help="jobs per measurement (default 20000)")
    parser.add_argument("--latency-samples", type=int, default=300, help="latency samples (default 300)")
    parser.add_argument(
        "--repeats", type=int, default=3, help="runs per throughput figure; the median counts"
    )
    parser.add_argument(
        "--out", type=Path, default=ROOT / "bench" / "results", help="where to write the JSON"
    )
    args = parser.parse_args(argv)

    from docjobs_devkit import PostgresServer, RedisServer

    from bench.board import bench_board
    from bench.board import report as report_board
    from docjobs.db.migrate import migrate

    args.out.mkdir(parents=True, exist_ok=True)
    postgres = PostgresServer().start()
    redis_server = RedisServer().start()
    try:
        url = postgres.create_database("bench")
        migrate(url)
        docjobs = bench_docjobs(url, args.jobs, args.latency_samples, args.repeats, args.out)
        baseline = bench_redis(redis_server.url, args.jobs, args.latency_samples, args.repeats, args.out)
        bullmq = bench_bullmq(url, redis_server.url, args.jobs, args.latency_samples, args.repeats, args.out)
        board_url = postgres.create_database("board")
        migrate(board_url)
        board = bench_board(board_url)
    finally:
        redis_server.stop()
        postgres.stop()
    seal = bench_seal()
    text = "\n\n".join(
        [
            report(docjobs, baseline, args.jobs, args.repeats, seal),
            report_bullmq(bullmq, baseline),
            report_board(board),
        ]
    )
    print(text)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    record: dict[str, Any] = {
        "jobs": args.jobs,
        "docjobs": asdict(docjobs),
        "redis": asdict(baseline),
        "bullmq": asdict(bullmq),
        "seal": seal,
        "board": board,
        "table": text,
    }
    (args.out / f"bench-{stamp}.json").write_text(json.dumps(record, indent=2))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
