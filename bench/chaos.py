"""``make chaos``: docjobs' promises under faults, with figures, on each provider.

For ``local``, ``bullmq`` and ``inngest`` in turn, against servers this script
starts: jobs are sent at a steady rate (2 % of them made to fail) while, in the
middle of the run and at moments drawn from the seed, the processes running them
are killed with SIGKILL and restarted (workers; on inngest, one of the two copies
of the web app Inngest calls), PostgreSQL is restarted, Redis is restarted
(bullmq), the self-trigger endpoint is made unreachable (local) or the Inngest
emulator loses and repeats calls (inngest), and one transaction holds its snapshot
open throughout. Then every job must be COMPLETED, or FAILED with its error when it
was made to fail; none PENDING or PROCESSING; every completed job run; and the jobs
that ran more than once no more than the faults forced (jobs the killed processes
held, calls whose answer was lost or that were made twice). On inngest a run
Inngest gave up on because its calls were lost must end FAILED with Inngest's
error, unless the job itself ended. Runs are counted from the job's own
append-only logs, not from the systems under test. Throughput before, during and
after the faults is printed. Exits 1 when a promise is broken.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import redis

ROOT = Path(__file__).resolve().parent.parent
JOB = "chaos.work"
PREFIX = "chaos"
#: Attempts a job made to fail gets (``max_retries=1`` on the actor).
FAILING_ATTEMPTS = 2
POLL_SECONDS = 0.2
#: The inngest run's emulator: its signing key, calls at once, first retry delay
#: (Inngest's own backoff starts in seconds), and the shares of calls it loses
#: before the app gets them, loses after the app answered, and makes twice while
#: the "lossy-calls" fault lasts.
INNGEST_SIGNING_KEY = "signkey-chaos-" + "c4" * 32
INNGEST_CONCURRENCY = 8
INNGEST_BACKOFF_SECONDS = 1.0
LOSSY_SHARE = 0.1
#: The error docjobs records for a run Inngest gave up on.
GIVEN_UP = "Inngest gave up on the run"


@dataclass(frozen=True)
class Plan:
    """One fault run's size and shape."""

    jobs: int = 10_000
    send_seconds: float = 30.0
    kills: int = 4
    seed: int = 1
    workers: int = 2
    threads: int = 4
    lease_seconds: float = 4.0
    fail_every: int = 50
    max_ms: int = 40
    down_seconds: float = 1.0
    cut_seconds: float = 3.0
    settle_seconds: float = 180.0
    #: The module of jobs the web app and the workers load (``make load`` adds tracing to it).
    actors: str = "bench.actors_chaos"


@dataclass
class Fault:
    """One fault, planned (``at``) and as it went (``started``, ``held``)."""

    kind: str
    at: float
    started: float = 0.0
    ended: float = 0.0
    held: int = 0


@dataclass
class Report:
    provider: str
    plan: Plan
    faults: list[Fault] = field(default_factory=list)
    states: dict[str, int] = field(default_factory=dict)
    broken: list[str] = field(default_factory=list)
    duplicated_jobs: int = 0
    extra_runs: int = 0
    held_at_kills: int = 0
    #: inngest: calls whose answer was lost after the app ran them, or made twice at once.
    forced_repeats: int = 0
    #: inngest: calls lost before the app got them (or cut by a kill).
    lost_calls: int = 0
    #: inngest: runs Inngest gave up on because their calls were lost.
    given_up: int = 0
    send_errors: int = 0
    revived_workers: int = 0
    throughput: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    #: Jobs that broke a promise, with their row and their runs.
    samples: dict[str, list[str]] = field(default_factory=dict)


def planned_faults(plan: Plan, provider: str, rng: random.Random) -> list[Fault]:
    """The faults in a random order, one per slot of the sending's middle (20 % to 60 %)."""
    kinds = ["kill"] * plan.kills + ["restart-postgres"]
    kinds.append({"bullmq": "restart-redis", "inngest": "lossy-calls"}.get(provider, "cut-self-trigger"))
    rng.shuffle(kinds)
    start, end = 0.2 * plan.send_seconds, 0.6 * plan.send_seconds
    slot = (end - start) / len(kinds)
    return [Fault(kind, start + index * slot + rng.uniform(0, slot / 2)) for index, kind in enumerate(kinds)]


class Cluster:
    """The servers, the web app and the worker processes of one provider's run.

    On inngest there are no workers: the emulator (in this process) calls two
    copies of the web app through the proxy, and those copies are what
    :attr:`workers` holds, kills and restarts.
    """

    def __init__(
        self, provider: str, plan: Plan, workdir: Path, postgres_settings: dict[str, str] | None = None
    ) -> None:
        from docjobs_devkit import PostgresServer, RedisServer

        self.provider = provider
        self.plan = plan
        self.workdir = workdir
        self.run_dir = workdir / "runs"
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.postgres = PostgresServer(postgres_settings)
        self.redis = RedisServer(appendonly=True) if provider == "bullmq" else None
        self.proxy: Any = None
        self.emulator: Any = None
        self.ports: dict[int, int] = {}  # inngest: the port of each copy of the web app
        self.web: subprocess.Popen[bytes] | None = None
        self.workers: list[subprocess.Popen[bytes]] = []
        self.started_workers = 0
        #: Workers that exited on their own (one started while Redis was down stops at once),
        #: started again as a supervisor (systemd, compose's restart policy) would.
        self.revived = 0
        self._workers_lock = threading.Lock()
        self._supervising = threading.Event()
        self.env: dict[str, str] = {}

    def start(self) -> None:
        from docjobs_devkit.services import free_port

        from bench.chaos_proxy import CuttableProxy
        from docjobs.db.migrate import migrate

        self.postgres.start()
        url = self.postgres.create_database("chaos")
        migrate(url)
        web_port = free_port()
        self.proxy = CuttableProxy(*([] if self.provider == "inngest" else [web_port])).start()
        self.env = {
            **{
                k: v
                for k, v in os.environ.items()
                if not k.startswith(("NEXT_PRIVATE_", "INNGEST_", "DOCJOBS_"))
            },
            "NODE_ENV": "development",
            "NEXT_PRIVATE_DATABASE_URL": url,
            "NEXT_PRIVATE_JOBS_PROVIDER": self.provider,
            "NEXT_PRIVATE_ENCRYPTION_SECONDARY_KEY": secrets.token_hex(16),
            "NEXT_PRIVATE_INTERNAL_WEBAPP_URL": self.proxy.url,
            "NEXT_PRIVATE_JOBS_LEASE_SECONDS": str(self.plan.lease_seconds),
            "NEXT_PRIVATE_JOBS_EMBEDDED_SCHEDULER": "false",
            "NEXT_PRIVATE_JOBS_DATA_DIR": str(self.workdir / "data"),
            "NEXT_PRIVATE_JOBS_LOG_LEVEL": "WARNING",
            "DOCJOBS_CHAOS_DIR": str(self.run_dir),
            "PYTHONPATH": str(ROOT),
            "PORT": str(web_port),
        }
        if self.redis is not None:
            self.redis.start()
            self.env |= {"NEXT_PRIVATE_REDIS_URL": self.redis.url, "NEXT_PRIVATE_REDIS_PREFIX": PREFIX}
        if self.provider == "inngest":
            self._start_emulator()
        if self.provider == "local":  # the app whose self-request wakes it: senders reach it by the proxy
            self.web = self._spawn(["web", "--actors", self.plan.actors, "--host", "127.0.0.1"], "web")
            _wait(lambda: _answers(f"http://127.0.0.1:{web_port}/healthz"), 60, "the web app did not start")
        for _ in range(self.plan.workers):
            self.start_worker()
        _wait(lambda: all(map(self.booted, self.workers)), 60, "the workers did not start")
        if self.emulator is not None:
            from docjobs.defaults import INNGEST_SERVE_PATH

            synced = self.emulator.sync(f"{self.proxy.url}{INNGEST_SERVE_PATH}")
            if synced.status_code != 200:
                raise RuntimeError(
                    f"the app did not sync with the emulator: {synced.status_code} {synced.text}"
                )
        self._supervising.set()
        threading.Thread(target=self._supervise, name="chaos-supervisor", daemon=True).start()

    def _supervise(self) -> None:
        while True:
            with self._workers_lock:
                if not self._supervising.is_set():
                    return
                exited = [worker for worker in self.workers if worker.poll() is not None]
                for worker in exited:
                    self.workers.remove(worker)
                    self.revived += 1
                    self.start_worker()
            time.sleep(0.5)

    def _start_emulator(self) -> None:
        from docjobs_devkit.inngest import CallFaults, InngestServer

        self.emulator = InngestServer(
            signing_key=INNGEST_SIGNING_KEY,
            backoff_seconds=INNGEST_BACKOFF_SECONDS,
            concurrency=INNGEST_CONCURRENCY,
            faults=CallFaults(seed=self.plan.seed),
        ).start()
        from docjobs.pdf.identity import write_development_certificate

        certificate = self.workdir / "certificate.p12"  # production wants one; no document is sealed
        write_development_certificate(certificate)
        self.env |= {
            "NODE_ENV": "production",  # calls are signed and checked, as in production
            "NEXT_PRIVATE_SIGNING_LOCAL_FILE_PATH": str(certificate),
            "INNGEST_BASE_URL": self.emulator.url,
            "INNGEST_SIGNING_KEY": INNGEST_SIGNING_KEY,
            "INNGEST_EVENT_KEY": self.emulator.event_key,
            # Production registers this URL, not the one a sync came to: the proxy, as the sync's.
            "INNGEST_SERVE_ORIGIN": self.proxy.url,
        }

    def lossy(self, on: bool) -> None:
        """Make the emulator lose and repeat calls, or stop."""
        from docjobs_devkit.inngest import CallFaults

        share = LOSSY_SHARE if on else 0.0
        self.emulator.faults = CallFaults(drop_request=share, drop_answer=share, repeat=share)

    def start_worker(self) -> None:
        self.started_workers += 1
        if self.provider == "inngest":  # a copy of the web app, which Inngest calls
            from docjobs_devkit.services import free_port

            port = free_port()
            web = self._spawn(
                ["web", "--actors", self.plan.actors, "--host", "127.0.0.1"],
                f"web-{self.started_workers}",
                PORT=str(port),
            )
            self.ports[web.pid] = port
            self.proxy.add(port)
            self.workers.append(web)
            return
        self.workers.append(
            self._spawn(
                ["worker", "--processes", "1", "--threads", str(self.plan.threads), self.plan.actors],
                f"worker-{self.started_workers}",
            )
        )

    def booted(self, worker: subprocess.Popen[bytes]) -> bool:
        """Its worker process has loaded the job (and so has a broker identity); a web app answers."""
        if worker.pid in self.ports:
            return _answers(f"http://127.0.0.1:{self.ports[worker.pid]}/healthz")
        return any(self.run_dir.glob(f"worker-{worker.pid}-*.id"))

    def kill_worker(self, rng: random.Random, restart_after: float) -> int:
        """SIGKILL a worker that is up (its whole process group), start another ``restart_after``
        seconds later; returns how many jobs the killed one held."""
        # On inngest one copy of the web app must stay up: with none, every call fails and
        # Inngest spends the jobs' attempts (a queue would just wait for its workers).
        needed = 2 if self.provider == "inngest" else 1
        _wait(lambda: sum(map(self.booted, self.workers)) >= needed, 60, "no worker came up to be killed")
        with self._workers_lock:
            victim = rng.choice([worker for worker in self.workers if self.booted(worker)])
            self.workers.remove(victim)
        # Inngest's calls in flight, to either copy: an upper bound of what the killed one held.
        in_flight = self.emulator.in_flight() if self.emulator is not None else 0
        os.killpg(victim.pid, signal.SIGKILL)
        victim.wait()
        if victim.pid in self.ports:
            self.proxy.remove(self.ports.pop(victim.pid))
        identities = [path.read_text() for path in self.run_dir.glob(f"worker-{victim.pid}-*.id")]
        held = in_flight if self.emulator is not None else self._held(identities)
        time.sleep(restart_after)
        with self._workers_lock:
            self.start_worker()
        return held

    def _held(self, identities: list[str]) -> int:
        """Jobs fetched or claimed by these broker identities and not acknowledged."""
        if self.redis is not None:
            client = redis.Redis.from_url(self.redis.url)
            keys = [key for ident in identities for key in client.scan_iter(f"{PREFIX}:__acks__.{ident}.*")]
            held = sum(int(client.scard(key)) for key in keys)
            client.close()
            return held
        with psycopg.connect(self.env["NEXT_PRIVATE_DATABASE_URL"]) as conn:
            row = conn.execute(
                "SELECT count(*) FROM background_job WHERE status = 'PROCESSING' AND locked_by = ANY(%s)",
                (identities,),
            ).fetchone()
        return int(row[0]) if row else 0

    def _spawn(self, args: list[str], name: str, **env: str) -> subprocess.Popen[bytes]:
        with open(self.workdir / f"{name}.log", "ab") as log:
            return subprocess.Popen(
                [sys.executable, "-m", "docjobs", *args],
                env=self.env | env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=ROOT,
            )

    def stop(self) -> None:
        with self._workers_lock:  # after a revival in progress, and before any other
            self._supervising.clear()
        for process in [*self.workers, *([self.web] if self.web else [])]:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in [*self.workers, *([self.web] if self.web else [])]:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if self.proxy is not None:
            self.proxy.close()
        if self.redis is not None:
            self.redis.stop()
        if self.emulator is not None:
            self.emulator.stop()
        self.postgres.stop()

    def postgres_log(self) -> str:
        """The PostgreSQL server's log so far (empty once the server is stopped)."""
        directory = self.postgres.directory
        log = directory / "postgres.log" if directory is not None else None
        return log.read_text(errors="replace") if log is not None and log.exists() else ""


class LongTransaction:
    """A REPEATABLE READ transaction that keeps its snapshot until closed, across restarts."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.conn: psycopg.Connection[Any] | None = None

    def open(self) -> None:
        self.conn = psycopg.connect(self.url)
        self.conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        self.conn.execute("SELECT count(*) FROM background_job")  # takes the snapshot

    def reopen(self) -> None:
        self.close()
        self.open()

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            except psycopg.Error:
                pass
            self.conn = None


def run_provider(provider: str, plan: Plan, workdir: Path) -> Report:
    """One provider's fault run; its report says which promises held."""
    from docjobs import jobs, runtime
    from docjobs.settings import Settings

    rng = random.Random(f"{plan.seed}-{provider}")
    report = Report(provider, plan, faults=planned_faults(plan, provider, rng))
    cluster = Cluster(provider, plan, workdir / provider)
    try:
        cluster.start()
        os.environ |= {"DOCJOBS_CHAOS_DIR": str(cluster.run_dir), "DOCJOBS_CHAOS_SENDER": "1"}
        import bench.actors_chaos  # noqa: F401 - declares the job the sender sends

        current = runtime.configure(Settings.from_environ(cluster.env))
        failing = {f"chaos-{n}" for n in range(plan.jobs) if n % plan.fail_every == 0}
        origin = time.time()

        payload_rng = random.Random(plan.seed)  # the fault thread draws from ``rng``

        def send() -> None:
            batch = max(1, plan.jobs // int(plan.send_seconds * 20))  # a batch every 50 ms
            for first in range(0, plan.jobs, batch):
                due = origin + plan.send_seconds * first / plan.jobs
                time.sleep(max(0.0, due - time.time()))
                ids = [f"chaos-{n}" for n in range(first, min(first + batch, plan.jobs))]
                payloads = [
                    {"n": int(i[6:]), "ms": payload_rng.randint(0, plan.max_ms), "fail": i in failing}
                    for i in ids
                ]
                while True:  # the app's duty: a send that raised is sent again, under the same ids
                    try:
                        jobs.trigger_many(JOB, payloads, ids=ids)
                        break
                    except Exception:  # noqa: BLE001 - any failure to send is retried
                        report.send_errors += 1
                        time.sleep(0.1)

        sender = threading.Thread(target=send, name="chaos-sender")
        sender.start()
        inject(cluster, report.faults, origin, rng)
        sender.join()
        _wait(lambda: _settled(cluster, current, plan.jobs), plan.settle_seconds, None)
        report.seconds = time.time() - origin
        report.revived_workers = cluster.revived
        check(report, cluster, failing, origin)
    finally:
        runtime.reset()
        cluster.stop()
    return report


def inject(cluster: Cluster, faults: list[Fault], origin: float, rng: random.Random) -> None:
    """Run the faults in order, each no earlier than planned, one transaction held open meanwhile."""
    url = cluster.env["NEXT_PRIVATE_DATABASE_URL"]
    long_transaction = LongTransaction(url)
    for index, fault in enumerate(faults):
        time.sleep(max(0.0, origin + fault.at - time.time()))
        if index == 0:
            long_transaction.open()
        fault.started = time.time() - origin
        if fault.kind == "kill":
            fault.held = cluster.kill_worker(rng, restart_after=0.5)
        elif fault.kind == "restart-postgres":
            cluster.postgres.restart(cluster.plan.down_seconds)
            long_transaction.reopen()
        elif fault.kind == "restart-redis":
            assert cluster.redis is not None
            cluster.redis.restart(cluster.plan.down_seconds)
        elif fault.kind == "cut-self-trigger":
            cluster.proxy.cut()
            time.sleep(cluster.plan.cut_seconds)
            cluster.proxy.mend()
        elif fault.kind == "lossy-calls":
            cluster.lossy(True)
            time.sleep(cluster.plan.cut_seconds)
            cluster.lossy(False)
        fault.ended = time.time() - origin
    long_transaction.close()


def _settled(cluster: Cluster, current: Any, jobs: int) -> bool:
    try:
        if current.history is not None:
            current.history.flush()  # the sender's own events
        with psycopg.connect(cluster.env["NEXT_PRIVATE_DATABASE_URL"]) as conn:
            row = conn.execute(
                "SELECT count(*) FILTER (WHERE status IN ('COMPLETED', 'FAILED')), count(*) "
                "FROM background_job WHERE actor = %s",
                (JOB,),
            ).fetchone()
    except (psycopg.OperationalError, redis.RedisError):
        return False  # a restart is still going on
    return row is not None and row[0] == row[1] == jobs


def check(report: Report, cluster: Cluster, failing: set[str], origin: float) -> None:
    """Compare what the database says with what the workers' run logs say; note every broken promise."""
    with psycopg.connect(cluster.env["NEXT_PRIVATE_DATABASE_URL"]) as conn:
        rows = {
            job_id: (status, error or "")
            for job_id, status, error in conn.execute(
                "SELECT id, status, last_error FROM background_job WHERE actor = %s", (JOB,)
            )
        }
    starts: Counter[str] = Counter()
    finished_at: dict[str, float] = {}
    completed: set[str] = set()  # jobs with a run that ended without failing
    runs: dict[str, list[str]] = {}
    for log in cluster.run_dir.glob("runs-*.log"):
        pid = log.stem.removeprefix("runs-")
        for line in log.read_text().splitlines():
            kind, job_id, at = line.split()
            runs.setdefault(job_id, []).append(f"{kind} in {pid} at {float(at) - origin:.2f} s")
            if kind == "start":
                starts[job_id] += 1
            else:
                finished_at[job_id] = max(finished_at.get(job_id, 0.0), float(at) - origin)
            if kind == "end":
                completed.add(job_id)
    report.states = dict(Counter(status for status, _ in rows.values()))
    expected = [f"chaos-{n}" for n in range(report.plan.jobs)]
    from bench.actors_chaos import FAILURE

    given_up = _inngest_calls(report, cluster)

    def expected_state(job_id: str) -> tuple[str, tuple[str, ...]]:
        """The status and the errors (any of) its row must have."""
        if job_id in failing:
            return "FAILED", (FAILURE, GIVEN_UP) if job_id in given_up else (FAILURE,)
        if job_id in given_up and job_id not in completed:  # no run of it ended: Inngest's error
            return "FAILED", (GIVEN_UP,)
        return "COMPLETED", ()

    missing = [i for i in expected if i not in rows]
    wrong = [i for i in expected if i in rows and rows[i][0] != expected_state(i)[0]]
    unexplained = [
        i
        for i in expected
        if i in rows
        and expected_state(i)[1]
        and not any(error in rows[i][1] for error in expected_state(i)[1])
    ]
    never_ran = [i for i in expected if i not in finished_at and i not in given_up]
    for what, found in (
        ("jobs lost (no row)", missing),
        ("jobs not in their expected final state", wrong),
        ("failed jobs without their error", unexplained),
        ("jobs that never finished a run", never_ran),
    ):
        if found:
            report.broken.append(f"{len(found)} {what}, e.g. {', '.join(sorted(found)[:5])}")
            for job_id in sorted(found)[:20]:  # for the JSON record: what the row and the logs say
                report.samples[job_id] = [str(rows.get(job_id)), *runs.get(job_id, [])]
    excess = {
        i: starts[i] - (FAILING_ATTEMPTS if i in failing else 1)
        for i in expected
        if starts[i] > (FAILING_ATTEMPTS if i in failing else 1)
    }
    report.duplicated_jobs = len(excess)
    report.extra_runs = sum(excess.values())
    report.held_at_kills = sum(fault.held for fault in report.faults)
    if report.duplicated_jobs > report.held_at_kills + report.forced_repeats:
        report.broken.append(
            f"{report.duplicated_jobs} jobs ran more than once, more than the {report.held_at_kills} "
            f"the killed processes held and the {report.forced_repeats} calls lost after they ran "
            "or made twice"
        )
    first = min(fault.started for fault in report.faults)
    last = max(fault.ended for fault in report.faults)
    ends = sorted(finished_at.values())
    windows = {"before": (0.0, first), "during": (first, last), "after": (last, max(ends, default=last))}
    report.throughput = {
        name: sum(start <= at < stop for at in ends) / (stop - start) if stop > start else 0.0
        for name, (start, stop) in windows.items()
    }


def _inngest_calls(report: Report, cluster: Cluster) -> set[str]:
    """Count the emulator's lost and repeated calls of the job; the jobs whose run it gave up on."""
    if cluster.emulator is None:
        return set()
    given_up = set()
    for run in cluster.emulator.runs:
        if not run.function.id.endswith(f"-{JOB}"):
            continue
        report.forced_repeats += sum(call.fault in ("dropped-answer", "repeated") for call in run.calls)
        report.lost_calls += sum(call.status == 0 and call.fault != "dropped-answer" for call in run.calls)
        if run.status == "failed" and run.calls and run.calls[-1].status == 0:
            given_up.add(str(run.event["data"].get("messageId") or run.event["id"]))
    report.given_up = len(given_up)
    return given_up


def render(report: Report) -> str:
    plan = report.plan
    faults = " · ".join(
        f"{fault.started:.1f} s {fault.kind}" + (f" (held {fault.held})" if fault.kind == "kill" else "")
        for fault in report.faults
    )
    states = ", ".join(f"{count} {state}" for state, count in sorted(report.states.items()))
    rates = ", ".join(f"{name} {rate:,.1f}" for name, rate in report.throughput.items())
    verdict = "every promise kept" if not report.broken else "BROKEN: " + "; ".join(report.broken)
    return "\n".join(
        [
            f"chaos {report.provider}: {plan.jobs} jobs sent over {plan.send_seconds:g} s "
            f"({plan.jobs // plan.fail_every + (plan.jobs % plan.fail_every > 0)} made to fail), "
            + (
                f"{plan.workers} copies of the web app called {INNGEST_CONCURRENCY} at a time, "
                if report.provider == "inngest"
                else f"{plan.workers} workers x {plan.threads} threads, lease {plan.lease_seconds:g} s, "
            )
            + f"seed {plan.seed}",
            f"  faults: {faults}; one REPEATABLE READ transaction open from the first to the last",
            f"  final states: {states} ({report.seconds:.1f} s from the first send to the last job settled)",
            f"  ran more than once: {report.duplicated_jobs} jobs ({report.extra_runs} extra runs); "
            f"held by the killed processes: {report.held_at_kills}; sends retried after an error: "
            f"{report.send_errors}; processes that exited and were started again: {report.revived_workers}",
            *(
                [
                    f"  Inngest's calls: {report.lost_calls} lost before the app got them or cut by a kill, "
                    f"{report.forced_repeats} lost after it answered or made twice; "
                    f"runs given up: {report.given_up}"
                ]
                if report.provider == "inngest"
                else []
            ),
            f"  throughput, jobs finished per second: {rates}",
            f"  {verdict}",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--provider", choices=["local", "bullmq", "inngest"], action="append", help="default: all three"
    )
    parser.add_argument("--jobs", type=int, default=Plan.jobs)
    parser.add_argument("--send-seconds", type=float, default=Plan.send_seconds)
    parser.add_argument("--kills", type=int, default=Plan.kills)
    parser.add_argument("--seed", type=int, default=int(time.time()) % 10_000)
    parser.add_argument("--reduced", action="store_true", help="the short run CI makes: 600 jobs over 6 s")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--workdir", type=Path, default=None, help="keep logs here (default: a temp dir)")
    args = parser.parse_args(argv)
    plan = Plan(jobs=args.jobs, send_seconds=args.send_seconds, kills=args.kills, seed=args.seed)
    if args.reduced:
        plan = Plan(jobs=600, send_seconds=6.0, kills=2, seed=args.seed, settle_seconds=90.0)
    import tempfile

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="docjobs-chaos-"))
    workdir.mkdir(parents=True, exist_ok=True)
    # The sender's own warnings (a pool losing the database, a refused self-request)
    # are expected here: they go to a file, the report to the terminal.
    logging.basicConfig(filename=workdir / "sender.log", level=logging.WARNING, force=True)
    print(f"chaos: seed {plan.seed}, logs in {workdir}", flush=True)
    reports = []
    for provider in args.provider or ["local", "bullmq", "inngest"]:
        reports.append(run_provider(provider, plan, workdir))
        print(f"\n{render(reports[-1])}", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    record = [{**asdict(report), "plan": asdict(report.plan)} for report in reports]
    (args.out / f"chaos-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(json.dumps(record, indent=2))
    return 1 if any(report.broken for report in reports) else 0


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _wait(ready: Callable[[], bool], seconds: float, failure: str | None) -> None:
    deadline = time.monotonic() + seconds
    while not ready():
        if time.monotonic() > deadline:
            if failure is not None:
                raise RuntimeError(failure)
            return  # the check that follows says what is left
        time.sleep(POLL_SECONDS)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
