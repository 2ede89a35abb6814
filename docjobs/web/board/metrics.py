"""Prometheus metrics of the jobs, read from the database at each scrape."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from docjobs.db.board import STATES

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class JobsCollector(Collector):
    """Gauges from one overview (see ``Board.overview``): counts per queue and state, ages, workers."""

    def __init__(self, overview: dict[str, Any]) -> None:
        self.overview = overview

    def collect(self) -> Iterator[Metric]:
        jobs = GaugeMetricFamily("docjobs_jobs", "Jobs per queue and state.", labels=["queue", "state"])
        oldest = GaugeMetricFamily(
            "docjobs_oldest_waiting_seconds", "Age of the oldest job due and waiting.", labels=["queue"]
        )
        paused = GaugeMetricFamily("docjobs_queue_paused", "1 when the queue is paused.", labels=["queue"])
        for queue in self.overview["queues"]:
            for state in STATES:
                jobs.add_metric([queue["queue"], state], float(queue[state]))
            oldest.add_metric([queue["queue"]], float(queue["oldest_waiting_seconds"] or 0))
            paused.add_metric([queue["queue"]], 1.0 if queue["paused"] else 0.0)
        yield from (jobs, oldest, paused)
        heartbeat = GaugeMetricFamily(
            "docjobs_worker_heartbeat_age_seconds",
            "Seconds since each worker's heartbeat.",
            labels=["worker"],
        )
        in_flight = GaugeMetricFamily(
            "docjobs_worker_jobs_in_flight", "Jobs each worker holds.", labels=["worker"]
        )
        for worker in self.overview["workers"]:
            heartbeat.add_metric([worker["id"]], float(worker["heartbeat_age_seconds"]))
            in_flight.add_metric([worker["id"]], float(worker["in_flight"]))
        yield from (heartbeat, in_flight)
        activity = self.overview["activity"]
        finished = GaugeMetricFamily(
            "docjobs_jobs_finished_last_hour",
            "Jobs finished in the last hour, by outcome.",
            labels=["outcome"],
        )
        finished.add_metric(["completed"], float(activity["completed"]))
        finished.add_metric(["failed"], float(activity["failed"]))
        yield finished
        run_time = GaugeMetricFamily(
            "docjobs_job_run_seconds_last_hour",
            "Run-time percentiles over the last hour.",
            labels=["quantile"],
        )
        for name, quantile in (("p50", "0.5"), ("p95", "0.95"), ("p99", "0.99")):
            value = activity["seconds"][name]
            if value is not None:
                run_time.add_metric([quantile], float(value))
        yield run_time


def render(overview: dict[str, Any]) -> bytes:
    """The exposition text for one overview."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(JobsCollector(overview))
    return generate_latest(registry)
