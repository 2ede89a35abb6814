"""The bench's tables, ratios and targets: pure functions over the measured figures.

Systems are keyed by short names (``SYSTEMS`` gives their labels). A ratio always
reads "higher is better for docjobs": ours / theirs for rates, theirs / ours for
latencies, memory and CPU. A target is data: a system's metric, alone or as a
ratio over a baseline measured in the same run, a comparison and a bound.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from bench.measure import Figures

SYSTEMS = {
    "redis": "Dramatiq + stock RedisBroker",
    "pgqueuer": "pgqueuer (async, batch 10)",
    "plain1": "plain psycopg INSERT / COPY of the same rows into background_job, claim 1 per statement",
    "plain50": "plain psycopg, claim 50 per statement",
    "local": "docjobs local (its default durability)",
    "local_other": "docjobs local, the other synchronous_commit",
    "local2": "docjobs local, 2 worker processes",
    "bullmq": "docjobs bullmq",
}

# (attribute of Figures, column heading, decimals, True when higher is better)
COLUMNS: list[tuple[str, str, int, bool]] = [
    ("enqueue", "enqueue/s", 0, True),
    ("bulk", "bulk/s", 0, True),
    ("drain", "drain/s", 0, True),
    ("latency_p50", "p50 ms", 1, False),
    ("latency_p99", "p99 ms", 1, False),
    ("rss_mib", "worker RSS MiB", 0, False),
    ("cpu_us_per_job", "worker CPU µs/job", 0, False),
    ("server_cpu_share", "PostgreSQL CPU, cores", 2, False),
]

# Short names for the ratios' rows.
SHORT = {
    "redis": "RedisBroker",
    "pgqueuer": "pgqueuer",
    "plain1": "plain, claim 1",
    "plain50": "plain, claim 50",
    "local": "local",
    "local2": "local, 2 processes",
    "bullmq": "bullmq",
}
# The server's CPU share is per second, not per job: between systems of different rates it is no ratio.
NOT_A_RATIO = {"server_cpu_share"}

# Each docjobs system against the baselines it is measured with.
RATIO_PAIRS = [
    ("local", "pgqueuer"),
    ("local", "plain1"),
    ("local", "plain50"),
    ("bullmq", "redis"),
    ("local2", "local"),
]


@dataclass(frozen=True)
class Target:
    """One of the issue's targets: ``system``'s ``metric`` (over ``baseline``'s, if any) ``op`` ``bound``."""

    name: str
    system: str
    metric: str
    op: Literal[">=", "<="]
    bound: float
    baseline: str | None = None
    unit: str = ""


TARGETS = [
    Target("local drain >= 1.5x pgqueuer", "local", "drain", ">=", 1.5, "pgqueuer"),
    Target("local worker CPU <= 100 µs/job", "local", "cpu_us_per_job", "<=", 100.0, unit="µs/job"),
    Target("local single enqueue >= 1.0x plain INSERT, same row", "local", "enqueue", ">=", 1.0, "plain1"),
    Target("local bulk enqueue >= 0.9x plain COPY, same rows", "local", "bulk", ">=", 0.9, "plain1"),
    Target("local worker RSS <= 50 MiB after the drain", "local", "rss_mib", "<=", 50.0, unit="MiB"),
    Target("local latency p50 <= 5 ms", "local", "latency_p50", "<=", 5.0, unit="ms"),
    Target("local latency p99 <= 20 ms", "local", "latency_p99", "<=", 20.0, unit="ms"),
    Target("web process RSS <= 70 MiB idle", "web", "rss_mib", "<=", 70.0, unit="MiB"),
    Target("bullmq single enqueue >= 1.0x RedisBroker", "bullmq", "enqueue", ">=", 1.0, "redis"),
    Target("bullmq drain >= 2x RedisBroker", "bullmq", "drain", ">=", 2.0, "redis"),
    Target("bullmq worker RSS <= 50 MiB after the drain", "bullmq", "rss_mib", "<=", 50.0, unit="MiB"),
    Target("bullmq latency p99 <= 50 ms", "bullmq", "latency_p99", "<=", 50.0, unit="ms"),
]


def figure(systems: dict[str, Figures], system: str, metric: str) -> float | None:
    """A measured figure, or ``None`` when the system or the figure is missing."""
    figures = systems.get(system)
    value: float | None = getattr(figures, metric) if figures is not None else None
    return value


def ratio(ours: float | None, theirs: float | None, higher_is_better: bool) -> float | None:
    """How many times better docjobs' figure is than the baseline's; ``None`` if either is missing."""
    if not ours or not theirs:
        return None
    return ours / theirs if higher_is_better else theirs / ours


def evaluate(target: Target, systems: dict[str, Figures]) -> tuple[float | None, bool | None]:
    """The target's measured value (a ratio when it has a baseline) and whether it is met."""
    value = figure(systems, target.system, target.metric)
    if target.baseline is not None:
        value = ratio(value, figure(systems, target.baseline, target.metric), higher_is_better=True)
    if value is None:
        return None, None
    return value, (value >= target.bound if target.op == ">=" else value <= target.bound)


def format_number(value: float | None, decimals: int) -> str:
    """A figure with thousands separators, or "–" when not measured."""
    return "–" if value is None else f"{value:,.{decimals}f}"


def format_ratio(value: float | None) -> str:
    """A ratio as "1.23x", or "–"."""
    return "–" if value is None else f"{value:.2f}x"


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table, the first column left-aligned and the others right-aligned."""
    widths = [max(len(line[i]) for line in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        rest = zip(cells[1:], widths[1:], strict=True)
        padded = [cells[0].ljust(widths[0])] + [cell.rjust(width) for cell, width in rest]
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join(["-" * (widths[0] + 2)] + ["-" * (w + 1) + ":" for w in widths[1:]]) + "|"
    return "\n".join([line(header), rule, *(line(row) for row in rows)])


def figures_table(systems: dict[str, Figures], labels: dict[str, str] | None = None) -> str:
    """One row per measured system, the issue's columns."""
    names = {**SYSTEMS, **(labels or {})}
    rows = [
        [names.get(key, key), *(format_number(getattr(figures, c[0]), c[2]) for c in COLUMNS)]
        for key, figures in systems.items()
    ]
    return markdown_table(["system", *(c[1] for c in COLUMNS)], rows)


def ratios_table(systems: dict[str, Figures]) -> str:
    """docjobs over each baseline, column by column (higher is better for docjobs)."""
    columns = [column for column in COLUMNS if column[0] not in NOT_A_RATIO]
    rows = []
    for ours, theirs in RATIO_PAIRS:
        if ours not in systems or theirs not in systems:
            continue
        cells = [
            format_ratio(ratio(figure(systems, ours, attr), figure(systems, theirs, attr), higher))
            for attr, _, _, higher in columns
        ]
        rows.append([f"{SHORT.get(ours, ours)} / {SHORT.get(theirs, theirs)}", *cells])
    return markdown_table(["docjobs / baseline", *(column[1] for column in columns)], rows)


def targets_table(systems: dict[str, Figures], targets: list[Target] = TARGETS) -> str:
    """Each target with its measured value and whether it is met."""
    rows = []
    for target in targets:
        value, met = evaluate(target, systems)
        measured = format_ratio(value) if target.baseline else f"{format_number(value, 1)} {target.unit}"
        bound = f"{target.op} {target.bound:g}{'x' if target.baseline else ' ' + target.unit}"
        verdict = "not measured" if met is None else ("met" if met else "NOT met")
        rows.append([target.name, bound, measured, verdict])
    return markdown_table(["target", "bound", "measured", "verdict"], rows)
