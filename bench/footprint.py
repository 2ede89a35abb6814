"""What a docjobs process costs before it runs a job: its imports and a web process's idle memory.

The worker's RSS after a drain is measured by ``bench.measure``; here, ``python -X
importtime`` over what a worker process imports (its total and the heaviest
third-party packages), and the RSS of ``docjobs web`` once it answers ``/healthz``
and has been idle a moment.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

from bench.measure import BYTES_PER_MIB, start_worker, stop_worker

# What each worker process imports before its first job (docjobs.cli.dramatiq_worker's command line).
WORKER_IMPORTS = ["docjobs.cli.dramatiq_worker", "docjobs.runtime", "docjobs.actors", "bench.actors_docjobs"]
WEB_READY_SECONDS = 60.0
WEB_SETTLE_SECONDS = 2.0
HEAVIEST_SHOWN = 6
_IMPORT_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)$")


@dataclass
class Imports:
    """``-X importtime`` of a set of modules: the total and the heaviest third-party packages."""

    total_ms: float
    heaviest: list[tuple[str, float]] = field(default_factory=list)


def parse_importtime(stderr: str) -> Imports:
    """Total cumulative ms of the top-level imports, and the third-party packages that cost the most."""
    total_us = 0
    packages: dict[str, int] = {}
    for line in stderr.splitlines():
        match = _IMPORT_LINE.match(line)
        if match is None:
            continue
        cumulative, indent, name = int(match[2]), len(match[3]), match[4]
        if indent == 1:
            total_us += cumulative
        top = name.split(".")[0]
        if "." not in name and not name.startswith("__") and top not in sys.stdlib_module_names | {"docjobs"}:
            packages[top] = max(packages.get(top, 0), cumulative)
    heaviest = sorted(packages.items(), key=lambda item: -item[1])[:HEAVIEST_SHOWN]
    return Imports(total_us / 1000, [(name, us / 1000) for name, us in heaviest])


def worker_imports(env: dict[str, str]) -> Imports:
    """``-X importtime`` of what a worker process imports, in a fresh interpreter."""
    code = "import " + ", ".join(WORKER_IMPORTS)
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return parse_importtime(result.stderr)


def web_idle_rss(env: dict[str, str], port: int, log: Path) -> float:
    """RSS in MiB of ``docjobs web`` (its defaults: embedded worker and scheduler), idle after start."""
    command = [
        sys.executable, "-m", "docjobs", "web", "--actors", "bench.actors_docjobs",
        "--host", "127.0.0.1", "--port", str(port),
    ]  # fmt: skip
    web = start_worker(command, env, log)
    try:
        deadline = time.monotonic() + WEB_READY_SECONDS
        while True:
            if web.poll() is not None:
                raise RuntimeError(f"docjobs web exited; see {log}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"docjobs web did not answer /healthz in {WEB_READY_SECONDS:g} s")
            time.sleep(0.1)
        time.sleep(WEB_SETTLE_SECONDS)
        root = psutil.Process(web.pid)
        return max(p.memory_info().rss for p in [root, *root.children(recursive=True)]) / BYTES_PER_MIB
    finally:
        stop_worker(web)


def report(imports: Imports, web_rss_mib: float | None) -> str:
    """The footprint's lines (the web process's target is in the targets' table)."""
    heaviest = ", ".join(f"{name} {ms:.0f} ms" for name, ms in imports.heaviest)
    web = "–" if web_rss_mib is None else f"{web_rss_mib:.0f} MiB"
    return (
        f"worker process imports (python -X importtime): {imports.total_ms:.0f} ms; heaviest third-party "
        f"packages: {heaviest or '–'}\nweb process idle RSS (docjobs web, its defaults): {web}"
    )
