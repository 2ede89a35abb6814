"""``make load``: sustained sending at 80 % of the measured drain rate, on each provider.

For ``local``, ``bullmq`` and ``inngest`` in turn, against servers this script
starts (the fault runs' cluster: two worker processes of four threads, and the web
app on local; on inngest, the Inngest emulator in this process making eight calls
at once to two copies of the web app): first the drain rate is measured (jobs
started per second while a sender keeps the queue full, in batches of the size the
load will send); then jobs are sent, a batch every 10 ms, at
80 % of it for ``--minutes`` (10 by default) while, every second, the queue depth
(on inngest: the runs not yet ended) and the workers' (web apps') resident memory
are sampled. Reported: send-to-start latency p50/p99 (from the workers' run logs),
the queue depth (its largest, and its mean in the first and last thirds), and the
workers' memory after the first minute and in the last one. Exits 1 when a job is
left unfinished, the depth is not bounded (over 5 s of work at any time, or its
mean in the last third over twice the first's), or the memory grows by more than
20 % after the first minute. Also reported: p99.9, whether the p99 target (50 ms on
local and bullmq) is met, the depth over time, and on local where each job's
latency went: (send -> row visible) / (visible -> claimed) / (claimed -> actor
began), from the sender's clock, the claims the processes trace
(``bench/actors_load.py``) and the jobs' run logs, with what the slowest 1 % waited
for. ``--minutes 1`` is the reduced run.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import redis

ROOT = Path(__file__).resolve().parent.parent
LOAD_FACTOR = 0.8
#: The most queued work allowed at any time, in seconds of draining.
MAX_DEPTH_SECONDS = 5.0
#: The most the workers' memory may grow after the first minute.
MAX_MEMORY_GROWTH = 0.20
#: The drain rate is measured with up to this many jobs kept waiting, over this long after a
#: warm-up. The warm-up sends batches of SATURATION_BATCH; the measurement, batches of the size
#: the load will send (80 % of the warm-up's rate per ``--send-every-ms``): the sender shares
#: the cores with the workers, and small batches cost it more per job.
SATURATION_BACKLOG = 2000
SATURATION_BATCH = 200
#: The saturation sender sends for this long between two reads of the depth.
SATURATION_BURST_SECONDS = 0.05
SATURATION_WARMUP_SECONDS = 3.0
SATURATION_SECONDS = 10.0
#: The target of issue 21: p99 send-to-start at 80 % of the drain rate, on these providers.
P99_TARGET_MS = 50.0
TARGET_PROVIDERS = ("local", "bullmq")
#: The sender sends a batch this often (``--send-every-ms``). Apps send one job at a time
#: from many processes: a batch every 50 ms (~70 jobs at local's 80 %) added 15-19 ms on
#: average to local's latency by itself, the jobs at its end waiting for those before them.
SEND_EVERY_MS = 10.0
#: The depth over time is printed as this many slices of the run (each its largest depth).
DEPTH_SLICES = 10


@dataclass
class LoadReport:
    provider: str
    minutes: float
    drain_rate: float = 0.0
    #: The saturation phase's rate as the history rows show it (``background_job`` rows
    #: finished per second; on bullmq they reach PostgreSQL through the journal, later).
    finished_rate: float = 0.0
    send_rate: float = 0.0
    sent: int = 0
    completed: int = 0
    latency_ms: dict[str, float] = field(default_factory=dict)
    depth: dict[str, float] = field(default_factory=dict)
    #: (seconds since the first send, jobs waiting), once a second.
    depth_series: list[tuple[float, int]] = field(default_factory=list)
    send_every_ms: float = SEND_EVERY_MS
    #: How late the sender's batches went out (p99, max ms): jobs due meanwhile were sent late,
    #: and their latency counts from when they went out.
    sender_behind_ms: dict[str, float] = field(default_factory=dict)
    #: Jobs started per second in each tenth of the run (from the workers' run logs).
    start_rate_series: list[float] = field(default_factory=list)
    #: local: where the latency went (see ``bench/latency_split.py``).
    split: dict[str, Any] = field(default_factory=dict)
    memory_mb: dict[str, float] = field(default_factory=dict)
    #: inngest: calls that got no answer (each one a retry, after the emulator's backoff).
    unanswered_calls: int = 0
    #: What the PostgreSQL server logged during the run, by kind: when, in seconds since the first
    #: send (``bench/server_log.py``).
    server_events: dict[str, list[float]] = field(default_factory=dict)
    #: bullmq: when Redis was rewriting its append-only file (the first second of each rewrite,
    #: seconds since the first send), and how often it held writes for a late fsync meanwhile.
    redis_rewrites_at: list[float] = field(default_factory=list)
    redis_delayed_fsyncs: int = 0
    broken: list[str] = field(default_factory=list)


def run_provider(
    provider: str, minutes: float, workdir: Path, send_every_ms: float = SEND_EVERY_MS
) -> LoadReport:
    from bench import server_log
    from bench.chaos import JOB, Cluster, Plan
    from docjobs import jobs, runtime
    from docjobs.settings import Settings

    report = LoadReport(provider, minutes, send_every_ms=send_every_ms)
    cluster = Cluster(
        provider,
        Plan(actors="bench.actors_load"),
        workdir / provider,
        postgres_settings=server_log.LOG_SETTINGS,
    )
    try:
        cluster.start()
        os.environ |= {"DOCJOBS_CHAOS_DIR": str(cluster.run_dir), "DOCJOBS_CHAOS_SENDER": "1"}
        import bench.actors_load  # noqa: F401 - declares the job the sender sends

        runtime.configure(Settings.from_environ(cluster.env))
        depth = _depth_probe(cluster)
        report.drain_rate, report.finished_rate = _saturated_rate(cluster, depth, send_every_ms)
        report.send_rate = LOAD_FACTOR * report.drain_rate
        #: Per batch: (its first job's number, sent at, trigger_many returned at), ``time.time()``.
        batches: list[tuple[int, float, float]] = []
        #: How late each batch went out (the sender itself stalled), in milliseconds.
        behind_ms: list[float] = []
        samples: list[tuple[float, int, float]] = []
        stop = threading.Event()

        persistence = _redis_persistence(cluster)

        def sample() -> None:
            rewriting = False
            while not stop.wait(1.0):
                samples.append((time.monotonic(), depth(), _workers_rss_mb(cluster)))
                if persistence is not None:
                    now_rewriting = bool(persistence()["aof_rewrite_in_progress"])
                    if now_rewriting and not rewriting:
                        report.redis_rewrites_at.append(round(time.monotonic() - origin, 1))
                    rewriting = now_rewriting
                # This process keeps what it measures (on inngest, the emulator keeps every
                # run): frozen, it is not rescanned by each full collection, whose pauses
                # grew past a second in 10 minutes and showed up as the jobs' latency.
                gc.freeze()

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        origin = time.monotonic()
        batch = load_batch(report.send_rate, send_every_ms)
        n = 0
        while time.monotonic() - origin < minutes * 60:
            due = origin + n / report.send_rate
            time.sleep(max(0.0, due - time.monotonic()))
            ids = [f"load-{i}" for i in range(n, n + batch)]
            behind_ms.append(max(0.0, time.monotonic() - due) * 1000)
            now = time.time()
            jobs.trigger_many(JOB, [{"n": i, "ms": 0} for i in range(n, n + batch)], ids=ids)
            batches.append((n, now, time.time()))
            n += batch
        report.sent = n
        deadline = time.monotonic() + 120
        while _finished(cluster, "load-%") < n and time.monotonic() < deadline:
            time.sleep(0.2)
        stop.set()
        report.completed = _finished(cluster, "load-%")
        if cluster.emulator is not None:
            report.unanswered_calls = sum(
                call.status == 0 for run in cluster.emulator.runs for call in run.calls
            )
        # How far behind its schedule the sender ended: how late its last batch went out.
        last_behind_ms = behind_ms[-1] if behind_ms else 0.0
        behind_ms.sort()
        report.sender_behind_ms = {
            "last": last_behind_ms,
            "p99": behind_ms[int(len(behind_ms) * 0.99)] if behind_ms else 0.0,
            "max": behind_ms[-1] if behind_ms else 0.0,
        }
        _summarise(report, cluster, batches, samples, origin)
        first_send = batches[0][1] if batches else time.time()
        report.server_events = server_log.read_events(cluster.postgres_log(), first_send).at
        if persistence is not None:
            report.redis_delayed_fsyncs = int(persistence()["aof_delayed_fsync"])
    finally:
        runtime.reset()
        cluster.stop()
    return report


def _summarise(
    report: LoadReport,
    cluster: Any,
    batches: list[tuple[int, float, float]],
    samples: list[tuple[float, int, float]],
    origin: float,
) -> None:
    from bench import latency_split

    sends = latency_split.Sends(batches, report.sent)
    started = latency_split.read_starts(cluster.run_dir, "load-")
    latencies = sorted((at - sends.sent_at(n)) * 1000 for n, at in started.items())
    if latencies:
        report.latency_ms = {
            "p50": statistics.median(latencies),
            "p99": latency_split.percentile(latencies, 0.99),
            "p99.9": latency_split.percentile(latencies, 0.999),
            "max": latencies[-1],
        }
    if started:
        first_sent = sends.sent_at(0)
        tenth = report.minutes * 60 / DEPTH_SLICES
        per_tenth = [0] * DEPTH_SLICES
        for at in started.values():
            k = int((at - first_sent) // tenth)
            if 0 <= k < DEPTH_SLICES:
                per_tenth[k] += 1
        report.start_rate_series = [round(count / tenth, 1) for count in per_tenth]
    if any(cluster.run_dir.glob("claims-*.log")):
        web_pid = cluster.web.pid if cluster.web is not None else None
        report.split = latency_split.split(cluster.run_dir, sends, started, "load-", web_pid=web_pid)
    span = report.minutes * 60
    during = [(t - origin, d, m) for t, d, m in samples if t - origin <= span]
    report.depth_series = [(round(t, 1), d) for t, d, _ in during]
    thirds = [[d for t, d, _ in during if k * span / 3 <= t < (k + 1) * span / 3] for k in range(3)]
    report.depth = {
        "max": max((d for _, d, _ in during), default=0),
        "mean_first_third": statistics.fmean(thirds[0]) if thirds[0] else 0.0,
        "mean_last_third": statistics.fmean(thirds[2]) if thirds[2] else 0.0,
    }
    warm = [m for t, _, m in during if 60 <= t < 70] or [m for _, _, m in during[:10]]
    last = [m for t, _, m in during if t >= span - 60]
    report.memory_mb = {
        "after_first_minute": statistics.fmean(warm) if warm else 0.0,
        "last_minute": statistics.fmean(last) if last else 0.0,
    }
    if report.completed < report.sent:
        report.broken.append(
            f"{report.sent - report.completed} jobs not finished two minutes after the last send"
        )
    if report.depth["max"] > MAX_DEPTH_SECONDS * report.drain_rate:
        report.broken.append(
            f"the queue reached {report.depth['max']} jobs, over {MAX_DEPTH_SECONDS:g} s of draining"
        )
    if report.depth["mean_last_third"] > max(2 * report.depth["mean_first_third"], report.drain_rate):
        report.broken.append("the queue kept growing: its depth in the last third is over twice the first's")
    grown = report.memory_mb["last_minute"] - report.memory_mb["after_first_minute"]
    if (
        report.memory_mb["after_first_minute"]
        and grown > MAX_MEMORY_GROWTH * report.memory_mb["after_first_minute"]
    ):
        report.broken.append(f"the workers' memory grew by {grown:.1f} MB after the first minute")


def _saturated_rate(cluster: Any, depth: Any, send_every_ms: float) -> tuple[float, float]:
    """Jobs started per second while a sender keeps the queue full (the sender shares this
    machine's cores with the workers, so a drain of a queue filled beforehand overstates it),
    and the rate their history rows finished at in the same window.

    Counted from the workers' run logs (when each job started), not from the history rows,
    which on bullmq reach PostgreSQL through the journal, at its pace; both are printed (they
    agreed within 1.5 % in the runs of issue 21). The window's batches are the size the load's
    will be, so the sender costs the workers' cores what it will cost them under load.
    """
    from bench import latency_split
    from bench.chaos import JOB
    from docjobs import jobs

    stop = threading.Event()
    batch = [SATURATION_BATCH]

    def flood() -> None:
        n = 0
        while not stop.is_set():
            if depth() < SATURATION_BACKLOG:
                # The depth is read once per burst, not per batch (local's probe connects anew
                # each time): batches of ~20 would otherwise wait on it, and measure the probe.
                burst_ends = time.monotonic() + SATURATION_BURST_SECONDS
                while time.monotonic() < burst_ends and not stop.is_set():
                    size = batch[0]
                    ids = [f"drain-{i}" for i in range(n, n + size)]
                    jobs.trigger_many(JOB, [{"n": i, "ms": 0} for i in range(n, n + size)], ids=ids)
                    n += size
            else:
                time.sleep(0.01)

    def started_between(opened: float, closed: float) -> int:
        return sum(
            opened <= at < closed for at in latency_split.read_starts(cluster.run_dir, "drain-").values()
        )

    sender = threading.Thread(target=flood, daemon=True)
    warm_up_opened = time.time()
    sender.start()
    time.sleep(SATURATION_WARMUP_SECONDS)
    warm_up_rate = started_between(warm_up_opened, time.time()) / SATURATION_WARMUP_SECONDS
    batch[0] = load_batch(LOAD_FACTOR * warm_up_rate, send_every_ms)
    time.sleep(1.0)  # the batches sent before go first
    first, started, window_opened = _finished(cluster, "drain-%"), time.monotonic(), time.time()
    time.sleep(SATURATION_SECONDS)
    finished_rate = (_finished(cluster, "drain-%") - first) / (time.monotonic() - started)
    window_closed = time.time()
    stop.set()
    sender.join()
    while depth() > 0:
        time.sleep(0.1)
    return started_between(window_opened, window_closed) / (window_closed - window_opened), finished_rate


def _redis_persistence(cluster: Any) -> Any:
    """bullmq: a call that returns Redis's ``INFO persistence``; ``None`` on other providers."""
    if cluster.redis is None:
        return None
    client = redis.Redis.from_url(cluster.redis.url, socket_timeout=5)
    return lambda: client.info("persistence")


def load_batch(send_rate: float, send_every_ms: float) -> int:
    """The jobs in each of the sender's batches: one every ``send_every_ms`` at ``send_rate``."""
    return max(1, round(send_rate * send_every_ms / 1000))


def _finished(cluster: Any, pattern: str) -> int:
    with psycopg.connect(cluster.env["NEXT_PRIVATE_DATABASE_URL"]) as conn:
        row = conn.execute(
            "SELECT count(*) FROM background_job WHERE id LIKE %s AND status IN ('COMPLETED', 'FAILED')",
            (pattern,),
        ).fetchone()
    return int(row[0]) if row else 0


def _depth_probe(cluster: Any) -> Any:
    """How many jobs wait to start, read from the queue itself (on inngest: runs not yet ended)."""
    if cluster.emulator is not None:
        emulator = cluster.emulator
        return lambda: sum(not run.done.is_set() for run in list(emulator.runs))
    if cluster.redis is not None:
        client = redis.Redis.from_url(cluster.redis.url)
        key = f"{cluster.env['NEXT_PRIVATE_REDIS_PREFIX']}:default"
        return lambda: int(client.llen(key))
    url = cluster.env["NEXT_PRIVATE_DATABASE_URL"]

    def local_depth() -> int:
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT count(*) FROM background_job WHERE status = 'PENDING'").fetchone()
        return int(row[0]) if row else 0

    return local_depth


def _workers_rss_mb(cluster: Any) -> float:
    """Resident memory of every worker process (their children included), in MB."""
    groups = {worker.pid for worker in cluster.workers}
    total = 0
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            pid = int(status.parent.name)
            if os.getpgid(pid) not in groups:
                continue
            for line in status.read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except (OSError, ValueError):
            continue
    return total / 1024


def target_verdict(report: LoadReport) -> str:
    """Whether the p99 target of issue 21 is met, in one line."""
    if report.provider not in TARGET_PROVIDERS:
        return f"target p99 <= {P99_TARGET_MS:g} ms: not set for {report.provider}"
    p99 = report.latency_ms.get("p99")
    if p99 is None:
        return f"target p99 <= {P99_TARGET_MS:g} ms: NOT met (no job started)"
    met = p99 <= P99_TARGET_MS
    return f"target p99 <= {P99_TARGET_MS:g} ms: {'met' if met else 'NOT met'} (p99 {p99:.1f} ms)"


def depth_over_time(report: LoadReport) -> str:
    """The largest depth in each tenth of the run, in order."""
    span = report.minutes * 60
    slices = [
        max(
            (
                d
                for t, d in report.depth_series
                if k * span / DEPTH_SLICES <= t < (k + 1) * span / DEPTH_SLICES
            ),
            default=0,
        )
        for k in range(DEPTH_SLICES)
    ]
    return " ".join(str(d) for d in slices)


def render(report: LoadReport) -> str:
    from bench import latency_split, server_log

    verdict = "bounded and flat" if not report.broken else "BROKEN: " + "; ".join(report.broken)
    latency, depth, memory = report.latency_ms, report.depth, report.memory_mb
    lines = [
        f"load {report.provider}: drain rate {report.drain_rate:,.1f} jobs/s (started; history rows "
        f"finished at {report.finished_rate:,.1f}/s); sent {report.sent} jobs "
        f"at {report.send_rate:,.1f} jobs/s (a batch every {report.send_every_ms:g} ms) "
        f"for {report.minutes:g} min; {report.completed} finished",
        f"  send-to-start latency: p50 {latency.get('p50', 0):.1f} ms, "
        f"p99 {latency.get('p99', 0):.1f} ms, p99.9 {latency.get('p99.9', 0):.1f} ms, "
        f"max {latency.get('max', 0):.1f} ms"
        + (
            f"; Inngest's calls with no answer: {report.unanswered_calls}"
            if report.provider == "inngest"
            else ""
        ),
        f"  {target_verdict(report)}",
        f"  queue depth: max {depth.get('max', 0):.0f}, mean {depth.get('mean_first_third', 0):.1f} "
        f"in the first third and {depth.get('mean_last_third', 0):.1f} in the last; "
        f"largest per tenth of the run: {depth_over_time(report)}",
        "  jobs started per second, per tenth of the run: "
        + " ".join(f"{rate:.0f}" for rate in report.start_rate_series),
        f"  sender's batches late by p99 {report.sender_behind_ms.get('p99', 0):.1f} ms, "
        f"max {report.sender_behind_ms.get('max', 0):.1f} ms; the last one by "
        f"{report.sender_behind_ms.get('last', 0):.1f} ms",
        f"  workers' memory: {memory.get('after_first_minute', 0):.1f} MB after the first minute, "
        f"{memory.get('last_minute', 0):.1f} MB in the last",
    ]
    if report.split:
        lines += ["  " + line for line in latency_split.render(report.split)]
    if report.server_events:
        lines.append("  " + server_log.ServerEvents(report.server_events).line())
    if report.provider == "bullmq":
        at = ", ".join(f"{t:g} s" for t in report.redis_rewrites_at)
        lines.append(
            f"  Redis: {len(report.redis_rewrites_at)} append-only file rewrites"
            + (f" (starting at {at})" if at else "")
            + f"; writes held for a late fsync {report.redis_delayed_fsyncs} times"
        )
    lines.append(f"  {verdict}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--provider", choices=["local", "bullmq", "inngest"], action="append", help="default: all three"
    )
    parser.add_argument("--minutes", type=float, default=10.0, help="1 for the reduced run")
    parser.add_argument(
        "--send-every-ms", type=float, default=SEND_EVERY_MS, help="how often the sender sends a batch"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args(argv)
    import logging
    import tempfile

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="docjobs-load-"))
    workdir.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(filename=workdir / "sender.log", level=logging.WARNING, force=True)
    print(f"load: logs in {workdir}", flush=True)
    reports = []
    for provider in args.provider or ["local", "bullmq", "inngest"]:
        reports.append(run_provider(provider, args.minutes, workdir, args.send_every_ms))
        print(f"\n{render(reports[-1])}", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    record = [asdict(report) for report in reports]
    path = args.out / f"load-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(record, indent=2))
    print(f"\nload: report in {path}", flush=True)
    return 1 if any(report.broken for report in reports) else 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
