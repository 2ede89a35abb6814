"""Run docjobs' command line as users run it: separate processes, each with its own log."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from tests.conftest import REPO_ROOT


def cli_env(environ: dict[str, str], **overrides: str) -> dict[str, str]:
    """The test's settings on top of a clean copy of this process's environment."""
    base = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("NEXT_PRIVATE_", "NEXT_PUBLIC_", "INNGEST_"))
        and name not in ("NODE_ENV", "PORT")
    }
    return {**base, **environ, "PYTHONPATH": str(REPO_ROOT), **overrides}


def docjobs(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "docjobs", *args], env=env, capture_output=True, text=True, timeout=timeout
    )


class Processes:
    def __init__(self) -> None:
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, *args: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
        with open(log, "ab") as output:
            process = subprocess.Popen(
                [sys.executable, "-m", "docjobs", *args],
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.started.append(process)
        return process

    def stop_all(self) -> None:
        for process in self.started:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.started:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
