"""The reduced fault run of ``make chaos``: every promise kept on local, bullmq and inngest."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT

#: The fault each provider has besides kills and a PostgreSQL restart.
OWN_FAULT = {"local": "cut-self-trigger", "bullmq": "restart-redis", "inngest": "lossy-calls"}


def test_the_reduced_fault_run_keeps_every_promise(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "bench/chaos.py", "--reduced", "--seed", "11", "--workdir", str(tmp_path),
         "--out", str(tmp_path / "out")],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert 0 == result.returncode, result.stdout + result.stderr[-3000:]
    (record,) = (tmp_path / "out").glob("chaos-*.json")
    reports = {report["provider"]: report for report in json.loads(record.read_text())}
    assert set(OWN_FAULT) == set(reports)
    for provider, report in reports.items():
        assert [] == report["broken"], provider
        states = report["states"]
        assert 600 == states.get("COMPLETED", 0) + states.get("FAILED", 0), provider
        # The 12 jobs made to fail, and on inngest any run Inngest gave up on after losing its calls.
        assert 12 <= states["FAILED"] <= 12 + report["given_up"], provider
        kinds = sorted(fault["kind"] for fault in report["faults"])
        assert sorted(["kill", "kill", "restart-postgres", OWN_FAULT[provider]]) == kinds
        assert report["duplicated_jobs"] <= report["held_at_kills"] + report["forced_repeats"]
        assert report["throughput"]["during"] > 0
    inngest = reports["inngest"]
    assert inngest["lost_calls"] > 0 and inngest["forced_repeats"] > 0  # the emulator's faults bit
    assert 3 == result.stdout.count("every promise kept")
