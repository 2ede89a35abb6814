"""Run docjobs' command line as users run it: separate processes, each with its own log."""

from __future__ import annotations

import os
import re
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


#: The demo's last line when everything went through.
DEMO_SUMMARY = re.compile(
    r"demo: (\d+) jobs, (\d+) completed, 0 not completed; (\d+) emails, (\d+) webhooks; "
    r"document 'Lease agreement' COMPLETED in [\d.]+ s"
)


def assert_demo_completed(stdout: str) -> None:
    """Every job completed, the document too, and its 9 emails and 9 webhooks went out.

    Invitations to 2 signers, 2 "has signed" to the owner, 1 "waiting", 4 "Signing Complete!";
    a webhook for each step.
    """
    summary = stdout.strip().splitlines()[-1]
    match = DEMO_SUMMARY.fullmatch(summary)
    assert match is not None, summary
    assert match[1] == match[2], summary
    assert ("9", "9") == (match[3], match[4]), summary
