"""``make load``'s sender and drain rate: small batches, as apps send, and the rate the workers
sustain while it sends (issue 21)."""

from __future__ import annotations

from bench.load import SEND_EVERY_MS, LoadReport, load_batch, render


def test_the_sender_sends_a_batch_per_period_at_the_load_rate() -> None:
    # Apps send one job at a time: the default period keeps batches small (local's 80 %
    # was ~70 jobs every 50 ms, whose last job waited for the 69 before it).
    assert SEND_EVERY_MS <= 10
    assert load_batch(1400.0, SEND_EVERY_MS) <= 14
    assert load_batch(1400.0, 50.0) == 70
    assert load_batch(20.0, 10.0) == 1  # never an empty batch


def test_the_report_shows_both_drain_rates_the_start_rate_and_how_late_the_sender_ended() -> None:
    report = LoadReport(
        "bullmq",
        1.0,
        drain_rate=1533.8,
        finished_rate=1532.9,
        start_rate_series=[1228.0, 1226.4],
        sender_behind_ms={"p99": 51.1, "max": 93.2, "last": 13.2},
    )
    text = render(report)
    assert "drain rate 1,533.8 jobs/s (started; history rows finished at 1,532.9/s)" in text
    assert "jobs started per second, per tenth of the run: 1228 1226" in text
    assert "the last one by 13.2 ms" in text
