"""Where ``make load``'s send-to-start latency went, job by job (local provider).

Each job's latency is split into three parts, from three clocks of one machine:

- send -> visible: from the sender's call to ``trigger_many`` until it returned (the
  row committed; a durable send includes the WAL flush);
- visible -> claimed: until the claim that took the job returned to its process
  (``claims-<pid>.log``, written by ``bench/actors_load.py``);
- claimed -> began: until the actor began (the job's run log): the time the job sat
  in the worker's prefetch buffer and work queue.

For the slowest 1 % it also says what they waited for: which process claimed
them, whether a wake-up reached that process after they were visible (if not, a
poll or a refill after an ack claimed them), how long after they were visible the
first wake-up came, the claims' sizes, and garbage collections that overlapped.
"""

from __future__ import annotations

import bisect
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Collections at least this long count as overlapping a slow job.
GC_PAUSE_MS = 10.0
#: Clock slack: a wake-up this much before the sender saw its commit return still counts as after.
SLACK_SECONDS = 0.002


def percentile(ordered: list[float], q: float) -> float:
    """The ``q`` quantile of sorted values (nearest rank)."""
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


class Sends:
    """When each batch of ``load-<n>`` jobs was sent and when its ``trigger_many`` returned."""

    def __init__(self, batches: list[tuple[int, float, float]], sent: int) -> None:
        self._firsts = [first for first, _, _ in batches]
        self._times = [(sent_at, returned) for _, sent_at, returned in batches]
        self.sent = sent

    def _batch(self, n: int) -> tuple[float, float]:
        return self._times[bisect.bisect_right(self._firsts, n) - 1]

    def position(self, n: int) -> float:
        """Where job ``n`` was in its batch: 0 first, 1 last."""
        i = bisect.bisect_right(self._firsts, n) - 1
        end = self._firsts[i + 1] if i + 1 < len(self._firsts) else self.sent
        return (n - self._firsts[i]) / max(end - self._firsts[i] - 1, 1)

    def sent_at(self, n: int) -> float:
        """When job ``n`` was sent."""
        return self._batch(n)[0]

    def visible_at(self, n: int) -> float:
        """When the send of job ``n`` returned (its row committed)."""
        return self._batch(n)[1]


def read_starts(run_dir: Path, prefix: str) -> dict[int, float]:
    """The first start of every ``<prefix><n>`` job, by ``n``, from the run logs."""
    started: dict[int, float] = {}
    for log in run_dir.glob("runs-*.log"):
        for line in log.read_text().splitlines():
            kind, job_id, at = line.split()
            if kind == "start" and job_id.startswith(prefix):
                n = int(job_id[len(prefix) :])
                if n not in started or float(at) < started[n]:
                    started[n] = float(at)
    return started


@dataclass(frozen=True)
class ClaimSeen:
    """The claim that took a job, as its process traced it."""

    began: float
    ended: float
    rows: int
    held: int
    woken: float
    pid: int


@dataclass
class Traces:
    """What every process traced: claims by job, wake-ups and collections by process."""

    claims: dict[int, ClaimSeen]
    wakes: dict[int, list[float]]
    pauses: dict[int, list[tuple[float, float]]]
    #: When each process first claimed any job: its collections before then are its start-up's.
    first_claim: dict[int, float]


def read_traces(run_dir: Path, prefix: str) -> Traces:
    """Parse the ``claims-<pid>.log`` files (see ``bench/actors_load.py``)."""
    traces = Traces({}, defaultdict(list), defaultdict(list), {})
    for log in run_dir.glob("claims-*.log"):
        pid = int(log.stem.split("-")[1])
        for line in log.read_text().splitlines():
            fields = line.split()
            if fields[0] == "wake":
                traces.wakes[pid].append(float(fields[1]))
            elif fields[0] == "gc":
                traces.pauses[pid].append((float(fields[1]), float(fields[2])))
            elif fields[0] == "claim":
                began, ended, _limit, rows, held, woken = fields[1:7]
                seen = ClaimSeen(float(began), float(ended), int(rows), int(held), float(woken), pid)
                traces.first_claim[pid] = min(traces.first_claim.get(pid, seen.began), seen.began)
                for job_id in fields[7].split(","):
                    if job_id.startswith(prefix):
                        traces.claims.setdefault(int(job_id[len(prefix) :]), seen)
    for times in traces.wakes.values():
        times.sort()
    return traces


def split(
    run_dir: Path, sends: Sends, started: dict[int, float], prefix: str, *, web_pid: int | None
) -> dict[str, Any]:
    """The latency's three parts for all jobs and the slowest 1 %, and what the slowest waited for."""
    traces = read_traces(run_dir, prefix)
    jobs = [n for n in started if n in traces.claims]
    if not jobs:
        return {}
    total = {n: (started[n] - sends.sent_at(n)) * 1000 for n in jobs}
    parts = {
        "send_to_visible": {n: (sends.visible_at(n) - sends.sent_at(n)) * 1000 for n in jobs},
        "visible_to_claimed": {n: (traces.claims[n].ended - sends.visible_at(n)) * 1000 for n in jobs},
        "claimed_to_began": {n: (started[n] - traces.claims[n].ended) * 1000 for n in jobs},
    }
    cutoff = percentile(sorted(total.values()), 0.99)
    tail = [n for n in jobs if total[n] >= cutoff]

    def first_wake_ms(n: int) -> float | None:
        claim, visible = traces.claims[n], sends.visible_at(n)
        times = traces.wakes.get(claim.pid, [])
        i = bisect.bisect_left(times, visible - SLACK_SECONDS)
        return (times[i] - visible) * 1000 if i < len(times) and times[i] <= claim.began else None

    def paused(n: int) -> bool:
        claim = traces.claims[n]
        window = (sends.visible_at(n), started[n])
        return any(
            ms >= GC_PAUSE_MS and at < window[1] and at + ms / 1000 > window[0]
            for at, ms in traces.pauses.get(claim.pid, [])
        )

    def profile(group: list[int]) -> dict[str, float]:
        claims = [traces.claims[n] for n in group]
        wakes = [w for w in map(first_wake_ms, group) if w is not None]
        return {
            "jobs": len(group),
            "claimed_by_web_share": sum(c.pid == web_pid for c in claims) / len(group),
            # The claim began with no wake-up set after the job was visible: a poll, or a
            # refill after an ack, or a backlog claim, found it.
            "claimed_without_wakeup_share": sum(
                c.woken < sends.visible_at(n) - SLACK_SECONDS for n, c in zip(group, claims, strict=True)
            )
            / len(group),
            "first_wakeup_after_visible_ms_mean": statistics.fmean(wakes) if wakes else -1.0,
            "claim_round_trip_ms_mean": statistics.fmean((c.ended - c.began) * 1000 for c in claims),
            "claim_rows_mean": statistics.fmean(c.rows for c in claims),
            "held_before_claim_mean": statistics.fmean(c.held for c in claims),
            "gc_pause_overlap_share": sum(map(paused, group)) / len(group),
            "position_in_batch_mean": statistics.fmean(map(sends.position, group)),
        }

    summary: dict[str, Any] = {"p99_cutoff_ms": cutoff, "parts": {}}
    for name, values in parts.items():
        ordered = sorted(values.values())
        summary["parts"][name] = {
            "mean": statistics.fmean(ordered),
            "p99": percentile(ordered, 0.99),
            "tail_mean": statistics.fmean(values[n] for n in tail),
        }
    summary["all"] = profile(jobs)
    summary["tail"] = profile(tail)
    # Spread over the run, or bunched in a few stalls: the seconds (since the first send) with most.
    origin = sends.sent_at(0)
    seconds = Counter(int(sends.sent_at(n) - origin) for n in tail)
    summary["tail_seconds"] = {"distinct": len(seconds), "busiest": seconds.most_common(5)}
    # A process's collections before its first claim are its start-up's: no job waited on them.
    first_claim = traces.first_claim
    summary["gc"] = {
        str(pid): {
            "pauses": len(running),
            "max_ms": max(running),
            "total_ms": sum(running),
            "at_boot": len(p) - len(running),
        }
        for pid, p in traces.pauses.items()
        if (running := [ms for at, ms in p if at >= first_claim.get(pid, float("inf"))])
    }
    summary["gc_at_boot"] = sum(
        at < first_claim.get(pid, float("inf")) for pid, p in traces.pauses.items() for at, _ in p
    )
    return summary


def render(summary: dict[str, Any]) -> list[str]:
    """The split as a few report lines."""
    parts = summary["parts"]
    lines = [
        "where the time went, ms (mean / p99 of all jobs; mean of the slowest 1 %, "
        f">= {summary['p99_cutoff_ms']:.1f} ms):"
    ]
    for name, label in (
        ("send_to_visible", "send -> row visible"),
        ("visible_to_claimed", "visible -> claimed"),
        ("claimed_to_began", "claimed -> actor began"),
    ):
        part = parts[name]
        lines.append(
            f"  {label:<24} {part['mean']:8.1f} / {part['p99']:8.1f}; slowest {part['tail_mean']:8.1f}"
        )
    for group, label in (("all", "all jobs"), ("tail", "slowest 1 %")):
        p = summary[group]
        lines.append(
            f"{label}: web app claimed {p['claimed_by_web_share']:.0%}; claimed with no wake-up after "
            f"visible {p['claimed_without_wakeup_share']:.0%}; first wake-up "
            f"{p['first_wakeup_after_visible_ms_mean']:.1f} ms after visible; "
            f"claim round trip {p['claim_round_trip_ms_mean']:.1f} ms, "
            f"{p['claim_rows_mean']:.1f} rows, {p['held_before_claim_mean']:.1f} held before; "
            f"GC pause >= {GC_PAUSE_MS:g} ms overlapping {p['gc_pause_overlap_share']:.0%}; "
            f"place in its batch {p['position_in_batch_mean']:.2f} (0 first, 1 last)"
        )
    spread = summary["tail_seconds"]
    busiest = ", ".join(f"{second} s: {count}" for second, count in spread["busiest"])
    lines.append(f"slowest 1 % sent in {spread['distinct']} distinct seconds; most in {busiest}")
    pauses = summary.get("gc", {})
    worst = max((p["max_ms"] for p in pauses.values()), default=0.0)
    lines.append(
        f"GC pauses >= 2 ms while running jobs: {sum(p['pauses'] for p in pauses.values())}, "
        f"longest {worst:.1f} ms ({summary.get('gc_at_boot', 0)} more before a first claim)"
    )
    return lines
