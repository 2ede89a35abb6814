"""The bench's ratios and targets: which way a ratio reads, and when a target is met."""

from __future__ import annotations

from bench.measure import Drain, Figures, cpu_spent, median_run
from bench.report import Target, evaluate, figures_table, ratio, ratios_table, targets_table


def test_a_ratio_reads_higher_is_better_for_docjobs_both_ways() -> None:
    assert ratio(3000.0, 2000.0, higher_is_better=True) == 1.5  # drain: ours over theirs
    assert ratio(2.0, 4.0, higher_is_better=False) == 2.0  # latency: theirs over ours
    assert ratio(None, 4.0, higher_is_better=True) is None
    assert ratio(3.0, 0.0, higher_is_better=True) is None


def test_a_target_over_a_baseline_is_met_by_the_ratio_not_the_figure() -> None:
    target = Target("local drain >= 1.5x pgqueuer", "local", "drain", ">=", 1.5, "pgqueuer")
    systems = {"local": Figures(drain=5900.0), "pgqueuer": Figures(drain=4000.0)}
    assert evaluate(target, systems) == (1.475, False)
    systems["local"].drain = 6000.0
    assert evaluate(target, systems) == (1.5, True)


def test_an_absolute_bound_and_a_missing_figure() -> None:
    memory = Target("local worker RSS <= 50 MiB", "local", "rss_mib", "<=", 50.0)
    assert evaluate(memory, {"local": Figures(rss_mib=50.5)}) == (50.5, False)
    assert evaluate(memory, {"local": Figures(rss_mib=48.0)}) == (48.0, True)
    assert evaluate(memory, {"local": Figures()}) == (None, None)
    assert evaluate(memory, {}) == (None, None)


def test_the_tables_print_each_verdict_and_ratio() -> None:
    systems = {
        "pgqueuer": Figures(drain=4000.0, latency_p99=5.0),
        "local": Figures(drain=7000.0, latency_p99=2.5, rss_mib=90.0),
    }
    targets = [
        Target("drain", "local", "drain", ">=", 1.5, "pgqueuer"),
        Target("memory", "local", "rss_mib", "<=", 50.0),
        Target("bulk", "local", "bulk", ">=", 0.9, "plain1"),
    ]
    verdicts = targets_table(systems, targets).splitlines()[2:]
    assert [line.split("|")[4].strip() for line in verdicts] == ["met", "NOT met", "not measured"]
    assert "1.75x" in verdicts[0] and "90.0" in verdicts[1]
    ratios = ratios_table(systems).splitlines()
    assert len(ratios) == 3  # only the pairs whose both systems were measured
    assert "1.75x" in ratios[2] and "2.00x" in ratios[2]  # drain, then p99 (theirs / ours)
    assert "PostgreSQL CPU" not in ratios[0]  # a share per second is no ratio between different rates
    assert "7,000" in figures_table(systems, {"local": "docjobs local, renamed"})
    assert "docjobs local, renamed" in figures_table(systems, {"local": "docjobs local, renamed"})


def test_the_median_run_keeps_that_runs_cpu_and_memory() -> None:
    runs = iter([Drain(3000.0, 150.0, 80.0), Drain(1000.0, 400.0, 70.0), Drain(2000.0, 200.0, 75.0)])
    assert median_run(3, lambda: next(runs)) == Drain(2000.0, 200.0, 75.0)


def test_cpu_counts_processes_born_during_the_drain_from_zero() -> None:
    assert cpu_spent({1: 1.0, 2: 5.0}, {1: 1.5, 2: 6.0, 3: 0.25}) == 1.75


def test_importtime_totals_the_top_level_and_names_the_heaviest_third_party_packages() -> None:
    from bench.footprint import parse_importtime

    stderr = "\n".join(
        [
            "import time: self [us] | cumulative | imported package",
            "import time:       100 |        100 |   _io",
            "import time:      1000 |       3000 | site",
            "import time:       500 |      40000 |   psycopg",
            "import time:       200 |        200 |     psycopg.pq",
            "import time:       300 |      50000 | docjobs.runtime",
            "import time:       100 |       7000 |   json",
            "import time:       100 |      20000 |   dramatiq",
        ]
    )
    imports = parse_importtime(stderr)
    assert imports.total_ms == 53.0  # site + docjobs.runtime, the lines at the top level
    assert imports.heaviest == [("psycopg", 40.0), ("dramatiq", 20.0)]  # no stdlib, no docjobs
