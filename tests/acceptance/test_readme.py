"""The README's "App code" section, run as written: its modules, its shell lines, its script.

The section's fenced blocks are read from the README itself, so an edit that breaks
them fails here. Conventions the README keeps:

- each ``python`` block starts with a ``# NAME.py`` comment, the file it is saved as;
- the ``sh`` block's lines are run in order, in the directory holding those files:
  ``export NAME=VALUE`` sets a variable, a line ending in ``&`` starts a process that
  runs until the test ends, any other line must exit 0. ``docjobs`` and ``python`` are
  this test's interpreter; the database URL is the test server's (the README's is a
  placeholder), every other variable is the README's alone.

(The quick start, ``make demo ARGS=--once``, is the demo's tests' business.)
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import psycopg
from docjobs_devkit import PostgresServer

from tests.conftest import REPO_ROOT, wait_for
from tests.support.processes import cli_env

#: The README whose section is run.
README_PATH = REPO_ROOT / "README.md"
SECTION = "## App code"
#: The one variable whose README value is a placeholder.
DATABASE_VARIABLE = "NEXT_PRIVATE_DATABASE_URL"
COMMAND_TIMEOUT_SECONDS = 60
JOBS_TIMEOUT_SECONDS = 30
_FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.MULTILINE | re.DOTALL)
_FILE_COMMENT = re.compile(r"#\s*([\w/.-]+\.py)\b")


def app_code_blocks(readme: str) -> list[tuple[str, str]]:
    """The (language, text) of each fenced block of the README's app-code section."""
    start = readme.index(SECTION)
    end = readme.find("\n## ", start + len(SECTION))
    return _FENCE.findall(readme[start : end if end != -1 else len(readme)])


def command_line(words: list[str]) -> list[str]:
    """A README command, run with this test's interpreter."""
    program, *rest = words
    if program == "docjobs":
        return [sys.executable, "-m", "docjobs", *rest]
    if program in ("python", "python3"):
        return [sys.executable, *rest]
    raise AssertionError(f"the README runs {program!r}: this test knows docjobs and python only")


def test_the_readme_app_code_section_runs_as_written(postgres_server: PostgresServer, tmp_path: Path) -> None:
    blocks = app_code_blocks(README_PATH.read_text())
    modules = [text for language, text in blocks if language == "python"]
    (shell,) = [text for language, text in blocks if language == "sh"]
    assert modules, "the section shows no Python"
    for text in modules:
        named = _FILE_COMMENT.match(text.splitlines()[0])
        assert named is not None, f"a Python block does not start with '# NAME.py': {text.splitlines()[0]!r}"
        (tmp_path / named[1]).write_text(text)

    name = f"readme_{os.getpid()}"
    database_url = postgres_server.create_database(name)  # empty: the README's `docjobs migrate` makes it
    env = cli_env({})
    exported: dict[str, str] = {}
    background: list[subprocess.Popen[bytes]] = []
    outputs: dict[str, str] = {}  # each command's stderr
    try:
        for line in shell.splitlines():
            words = shlex.split(line, comments=True)
            if not words:
                continue
            if words[0] == "export":
                variable, _, value = words[1].partition("=")
                exported[variable] = value
                env[variable] = database_url if variable == DATABASE_VARIABLE else value
            elif words[-1] == "&":
                log = tmp_path / f"background-{len(background)}.log"
                with open(log, "wb") as output:
                    background.append(
                        subprocess.Popen(
                            command_line(words[:-1]),
                            cwd=tmp_path,
                            env=env,
                            stdout=output,
                            stderr=subprocess.STDOUT,
                            start_new_session=True,
                        )
                    )
            else:
                ran = subprocess.run(
                    command_line(words),
                    cwd=tmp_path,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=COMMAND_TIMEOUT_SECONDS,
                )
                assert 0 == ran.returncode, (line, ran.stdout, ran.stderr)
                outputs[line] = ran.stderr
        # What a newcomer needs is on the page: development mode (or the secrets), the database, migrate.
        assert "development" == exported.get("NODE_ENV")
        assert exported.get(DATABASE_VARIABLE, "").startswith("postgresql://")
        assert re.search(r"^docjobs migrate\b", shell, re.MULTILINE)
        assert background, "the section starts no worker"

        def settled() -> list[tuple[str, str, bool]] | None:
            with psycopg.connect(database_url) as conn:
                rows = conn.execute("SELECT actor, status, run_at <= now() FROM background_job").fetchall()
            due = [row for row in rows if row[2]]
            return rows if due and all(status in ("COMPLETED", "FAILED") for _, status, _ in due) else None

        rows = wait_for(settled, timeout=JOBS_TIMEOUT_SECONDS)
        statuses = {status for _, status, due in rows if due}
        assert {"COMPLETED"} == statuses, rows
        for process in background:
            assert process.poll() is None, "a background command ended early"
    finally:
        for process in background:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in background:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        postgres_server.drop_database(name)
    logs = [path.read_text() for path in sorted(tmp_path.glob("background-*.log"))]
    assert not any("Traceback" in text for text in [*outputs.values(), *logs]), [*outputs.values(), *logs]
    # A script with no web app to wake says so once, however many jobs it sends.
    scripts = {
        line: text
        for line, text in outputs.items()
        if shlex.split(line, comments=True)[0].startswith("python")
    }
    assert scripts and all(len(text.splitlines()) <= 1 for text in scripts.values()), scripts
