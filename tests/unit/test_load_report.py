"""``make load``'s report: the p99 target's verdict, and where each job's latency went."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from bench.latency_split import Sends, read_starts, split
from bench.load import LoadReport, depth_over_time, target_verdict


def test_the_p99_target_is_met_or_not_on_local_and_bullmq_only() -> None:
    report = LoadReport("local", 1.0, latency_ms={"p50": 9.0, "p99": 50.0, "p99.9": 80.0})
    assert target_verdict(report) == "target p99 <= 50 ms: met (p99 50.0 ms)"
    report.latency_ms["p99"] = 50.1
    assert target_verdict(report) == "target p99 <= 50 ms: NOT met (p99 50.1 ms)"
    assert "NOT met (no job started)" in target_verdict(LoadReport("bullmq", 1.0))
    assert "not set for inngest" in target_verdict(LoadReport("inngest", 1.0))


def test_the_depth_over_time_is_the_largest_depth_of_each_tenth() -> None:
    report = LoadReport("local", 1.0, depth_series=[(1.0, 5), (2.0, 9), (31.0, 40), (59.0, 3)])
    assert depth_over_time(report) == "9 0 0 0 0 40 0 0 0 3"


def test_each_jobs_latency_splits_into_visible_claimed_and_began(tmp_path: Path) -> None:
    # Two batches of two jobs, sent at 100.000 and 100.050, committed 2 ms later.
    sends = Sends([(0, 100.000, 100.002), (2, 100.050, 100.052)], sent=4)
    (tmp_path / "runs-7.log").write_text(
        "start load-0 100.006000\nend load-0 100.007000\nstart load-1 100.008000\n"
        "start load-2 100.055000\nstart load-3 100.300000\nstart load-3 100.900000\n"  # load-3 ran twice
    )
    (tmp_path / "claims-7.log").write_text(
        "wake 100.003000 docjobs-listener\n"
        "claim 100.003500 100.005000 8 2 0 100.003000 load-0,load-1\n"
        "claim 100.053000 100.054000 8 1 0 100.003000 load-2\n"  # no wake-up since its commit
        "wake 100.280000 docjobs-listener\n"
        "claim 100.281000 100.290000 8 1 0 100.280000 load-3\n"
        "gc 100.285000 12.000 2 5000 0\n"
        "gc 99.000000 80.000 2 5000 0\n"  # before the process's first claim: its start-up's
    )
    started = read_starts(tmp_path, "load-")
    assert started[3] == 100.300  # the first run counts
    summary = split(tmp_path, sends, started, "load-", web_pid=None)
    parts = summary["parts"]
    # load-3 is the slowest 1 %: sent 100.050, visible 100.052, claimed 100.290, began 100.300.
    assert round(parts["send_to_visible"]["tail_mean"], 3) == 2.0
    assert round(parts["visible_to_claimed"]["tail_mean"], 3) == 238.0
    assert round(parts["claimed_to_began"]["tail_mean"], 3) == 10.0
    tail = summary["tail"]
    assert tail["jobs"] == 1
    assert tail["claimed_without_wakeup_share"] == 0.0  # a wake-up came, 228 ms after visible
    assert round(tail["first_wakeup_after_visible_ms_mean"], 3) == 228.0
    assert tail["gc_pause_overlap_share"] == 1.0
    assert tail["position_in_batch_mean"] == 1.0  # the last of its batch
    assert summary["tail_seconds"] == {"distinct": 1, "busiest": [(0, 1)]}
    assert summary["gc"] == {"7": {"pauses": 1, "max_ms": 12.0, "total_ms": 12.0, "at_boot": 1}}
    assert summary["gc_at_boot"] == 1
    every = summary["all"]
    assert every["claimed_without_wakeup_share"] == 0.25  # load-2 was found by a refill or poll
    assert every["claim_rows_mean"] == 1.5


def test_the_report_names_what_postgresql_logged_and_when() -> None:
    from bench.server_log import read_events

    log = (
        "2026-12-07 02:59:09.120 UTC [28952] docjobs-worker-vm-28929 LOG:  duration: 17.792 ms  plan:\n"
        '2026-12-07 02:59:09.500 UTC [29220] LOG:  automatic vacuum of table "chaos.public.background_job": index'
        " scans: 1\n"  # before the first send: not the load's
        "2026-12-07 02:59:10.334 UTC [28954] LOG:  process 28954 still waiting for ShareLock on transaction 19505"
        " after 1000.2 ms\n"
        "2026-12-07 02:59:11.334 UTC [28954] docjobs-worker-vm-28929 ERROR:  deadlock detected\n"
        "2026-12-07 02:59:11.334 UTC [28954] docjobs-worker-vm-28929 DETAIL:  Process 28954 waits for ShareLock\n"
        '2026-12-07 02:59:55.218 UTC [29220] LOG:  automatic vacuum of table "chaos.public.background_job": index'
        " scans: 1\n"
        '2026-12-07 02:59:56.218 UTC [29220] LOG:  automatic vacuum of table "chaos.public.worker": index scans: 0\n'
        "2026-12-07 03:00:50.588 UTC [28855] LOG:  checkpoint starting: wal\n"
        "2026-12-07 03:01:40.100 UTC [28855] LOG:  checkpoint complete: wrote 8942 buffers (54.6%)\n"
    )
    first_send = datetime(2026, 12, 7, 2, 59, 10, tzinfo=UTC).timestamp()
    events = read_events(log, first_send)
    assert {
        "deadlocks": [1.3],
        "lock waits": [0.3],
        "autovacuums of background_job": [45.2],
        "checkpoints": [100.6],
    } == events.at
    assert events.line() == (
        "PostgreSQL: 1 deadlocks (at 1.3 s); 1 lock waits (at 0.3 s); "
        "1 autovacuums of background_job (at 45.2 s); 1 checkpoints (at 100.6 s)"
    )
