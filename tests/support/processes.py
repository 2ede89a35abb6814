"""Run docjobs' command line as users run it: separate processes, each with its own log."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import psutil

from tests.conftest import REPO_ROOT

#: What ``make`` passes to the commands it runs.
MAKE_VARIABLES = ("MAKELEVEL", "MAKEFLAGS", "MFLAGS", "MAKEOVERRIDES", "MAKE_TERMOUT", "MAKE_TERMERR")


def cli_env(environ: dict[str, str], **overrides: str) -> dict[str, str]:
    """The test's settings on top of a clean copy of this process's environment.

    Make's own variables go too: under ``make test`` they would make a ``make`` the test
    runs print "Entering directory" lines a user's shell never shows.
    """
    base = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("NEXT_PRIVATE_", "NEXT_PUBLIC_", "INNGEST_"))
        and name not in ("NODE_ENV", "PORT", *MAKE_VARIABLES)
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


#: The demo's last line when every job of its run, and the document, completed.
DEMO_SUMMARY = re.compile(
    r"demo: (\d+) jobs this run, (\d+) completed, 0 not completed, 1 retried \(demo\.flaky fails once on purpose\); "
    r"(\d+) emails, (\d+) webhooks; document 'Lease agreement' COMPLETED in [\d.]+ s"
)
#: ``docjobs demo --once`` prints no more lines than this (``make demo`` adds its echo of the command).
DEMO_ONCE_MAX_LINES = 7


def assert_demo_completed(stdout: str) -> int:
    """Every job of the run completed, the document too, and its 9 emails and 9 webhooks went out.

    Invitations to 2 signers, 2 "has signed" to the owner, 1 "waiting", 4 "Signing Complete!";
    a webhook for each step.

    Returns:
        How many jobs the run counted.
    """
    summary = stdout.strip().splitlines()[-1]
    match = DEMO_SUMMARY.fullmatch(summary)
    assert match is not None, summary
    assert match[1] == match[2], summary
    assert ("9", "9") == (match[3], match[4]), summary
    return int(match[1])


def assert_demo_said_little(
    result: subprocess.CompletedProcess[str], max_lines: int = DEMO_ONCE_MAX_LINES
) -> None:
    """``docjobs demo --once`` printed a handful of lines and no traceback."""
    lines = (result.stdout + result.stderr).splitlines()
    assert len(lines) <= max_lines, "\n".join(lines)
    assert not any("Traceback" in line for line in lines), "\n".join(lines)


def postgres_processes_of(pgdata: Path) -> list[psutil.Process]:
    """The running postgres processes whose command line names ``pgdata``."""
    found = []
    for process in psutil.process_iter(["name", "cmdline"]):
        if process.info["name"] == "postgres" and str(pgdata.resolve()) in (process.info["cmdline"] or []):
            found.append(process)
    return found
