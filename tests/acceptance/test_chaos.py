"""The reduced fault run of ``make chaos``: every promise kept on local and bullmq."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT


def test_the_reduced_fault_run_keeps_every_promise(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "bench/chaos.py", "--reduced", "--seed", "11", "--workdir", str(tmp_path),
         "--out", str(tmp_path / "out")],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert 0 == result.returncode, result.stdout + result.stderr[-3000:]
    (record,) = (tmp_path / "out").glob("chaos-*.json")
    reports = {report["provider"]: report for report in json.loads(record.read_text())}
    assert {"local", "bullmq"} == set(reports)
    for provider, report in reports.items():
        assert [] == report["broken"], provider
        assert {"COMPLETED": 588, "FAILED": 12} == report["states"], provider
        kinds = sorted(fault["kind"] for fault in report["faults"])
        other = "restart-redis" if provider == "bullmq" else "cut-self-trigger"
        assert sorted(["kill", "kill", "restart-postgres", other]) == kinds
        assert report["duplicated_jobs"] <= report["held_at_kills"]
        assert report["throughput"]["during"] > 0
    assert 2 == result.stdout.count("every promise kept")
