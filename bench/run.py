"""``make bench``: docjobs against the best Postgres queue, the plain-SQL floor and Dramatiq's RedisBroker.

Everything runs on this machine in one run, against servers this script starts:
PostgreSQL with its durable defaults (fsync on), Redis without persistence (its default
deployment for Dramatiq). For each system:

- enqueue: N single sends from one thread;
- bulk: N jobs in one call (docjobs ``trigger_many``, pgqueuer's list ``enqueue``, a
  plain COPY of the same 11 columns into docjobs' background_job; Dramatiq has no bulk
  API, so its figure is ``group(...).run()``);
- drain: N no-op jobs queued, then one worker process empties the queue, timed from
  its first claim to the last ack, with the worker's CPU per job and RSS at the end;
  docjobs local also with 2 worker processes, and the PostgreSQL server's CPU share;
- latency: at idle, one job at a time, from the send to the job starting, reported
  by the job over UDP.

Ratios compare docjobs with baselines measured minutes apart on the same machine;
absolute numbers move with the machine's load, ratios much less. The issue's targets
(``bench.report.TARGETS``) are printed with the measured value and whether each is met.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def bench_seal() -> dict[str, Any]:
    """Seal timings and peak memory, measured in a fresh process."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "seal.py")], env=env, capture_output=True, text=True, check=True
    )
    figures: dict[str, Any] = json.loads(result.stdout)
    return figures


def report_seal(seal: dict[str, Any]) -> str:
    """The seal's line."""
    return (
        f"seal, {seal['pages']} pages, {seal['fields']} fields: {seal['seconds']:.2f} s warm (median of 3), "
        f"{seal['first_seconds']:.2f} s cold; peak RSS {seal['peak_rss_mb']:.0f} MB, Python peak "
        f"{seal['python_peak_mb']:.1f} MB; {seal['output_bytes'] / 1024:.0f} KiB out; target < 5 s: "
        f"{'yes' if seal['first_seconds'] < 5 else 'NO'}"
    )


def main(argv: list[str] | None = None) -> int:
    """Start the servers, measure every system, print the tables and write them as JSON."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20_000, help="jobs per measurement (default 20000)")
    parser.add_argument("--latency-samples", type=int, default=300, help="latency samples (default 300)")
    parser.add_argument(
        "--repeats", type=int, default=3, help="runs per throughput figure; the median counts"
    )
    parser.add_argument(
        "--no-board", action="store_true", help="skip the board over a million rows (about a minute)"
    )
    parser.add_argument(
        "--out", type=Path, default=ROOT / "bench" / "results", help="where to write the JSON"
    )
    args = parser.parse_args(argv)

    from docjobs_devkit import PostgresServer, RedisServer
    from docjobs_devkit.services import free_port

    from bench import report
    from bench.baselines.pgqueuer import bench_pgqueuer
    from bench.baselines.plain import bench_plain
    from bench.baselines.redis import bench_redis
    from bench.board import bench_board
    from bench.board import report as report_board
    from bench.footprint import report as report_footprint
    from bench.footprint import web_idle_rss, worker_imports
    from bench.measure import Figures
    from bench.providers.bullmq import bench_bullmq
    from bench.providers.local import bench_local, commit_mode, local_environ
    from docjobs.db.migrate import migrate

    count, samples, repeats, out = args.jobs, args.latency_samples, args.repeats, args.out
    out.mkdir(parents=True, exist_ok=True)
    systems: dict[str, Figures] = {}
    board: dict[str, Any] | None = None
    postgres = PostgresServer().start()
    redis_server = RedisServer().start()
    try:
        url = postgres.create_database("bench")
        migrate(url)
        local, labels, durable = bench_local(url, count, samples, repeats, out)
        pgqueuer_url = postgres.create_database("pgqueuer")
        systems["pgqueuer"] = bench_pgqueuer(pgqueuer_url, count, samples, repeats, out)
        plain = bench_plain(postgres.create_database("plain"), count, samples, repeats, out, durable)
        systems.update(plain)
        systems.update(local)
        env = {**os.environ, **local_environ(url, out), "PYTHONPATH": str(ROOT)}
        imports = worker_imports(env)
        web_rss = web_idle_rss(env, free_port(), out / "web.log")
        systems["redis"] = bench_redis(redis_server.url, count, samples, repeats, out)
        systems["bullmq"] = bench_bullmq(url, redis_server.url, count, samples, repeats, out)
        if not args.no_board:
            board_url = postgres.create_database("board")
            migrate(board_url)
            board = bench_board(board_url)
    finally:
        redis_server.stop()
        postgres.stop()
    seal = bench_seal()
    labels["plain1"] = (
        f"plain psycopg INSERT / COPY of the same 11 columns into background_job ({commit_mode(durable)}),"
        " claim 1 per statement from a 3-column table"
    )
    sections = [
        f"docjobs bench: {count} jobs per run, median of {repeats} runs, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, PostgreSQL durable defaults, Redis without persistence. "
        "Drains: 1 worker process x 8 threads (pgqueuer: 1 process, one event loop, batches of 10).",
        report.figures_table(systems, labels),
        "Ratios, higher is better for docjobs (ours / theirs for rates, theirs / ours for the rest):",
        report.ratios_table(systems),
        "Targets of issue 21:",
        report.targets_table({**systems, "web": Figures(rss_mib=web_rss)}),
        report_footprint(imports, web_rss),
        report_seal(seal),
    ]
    if board is not None:
        sections.append(report_board(board))
    text = "\n\n".join(sections)
    print(text)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    record: dict[str, Any] = {
        "jobs": count,
        "repeats": repeats,
        "systems": {key: asdict(figures) for key, figures in systems.items()},
        "labels": {**report.SYSTEMS, **labels},
        "imports": asdict(imports),
        "web_idle_rss_mib": web_rss,
        "seal": seal,
        "board": board,
        "table": text,
    }
    (out / f"bench-{stamp}.json").write_text(json.dumps(record, indent=2))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
