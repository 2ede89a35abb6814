"""``docjobs health``: every role on every provider answers in one line, never a traceback.

A role the provider has not (inngest's and the stub's scheduler, inngest's workers) is
refused with exit 2, decided from the provider's capabilities, with or without a
database; the others check, and say why they are unhealthy in one line (exit 1).
"""

from __future__ import annotations

import pytest
from docjobs_devkit.services import RedisServer, free_port

from docjobs import cli
from tests.conftest import INNGEST_SIGNING_KEY

PROVIDERS = ("local", "bullmq", "inngest", "stub")
ROLES = ("web", "worker", "scheduler")
#: What each check says where nothing runs: (exit code, start of the line); None where
#: the scheduler's verdict hangs on when this machine's first process started.
EXPECTED: dict[tuple[str, str], tuple[int | None, str]] = {
    ("local", "worker"): (1, "worker: no worker process on "),
    ("bullmq", "worker"): (1, "worker: "),
    ("inngest", "worker"): (2, "docjobs: error: the inngest provider has no workers to check"),
    ("stub", "worker"): (2, "docjobs: error: the stub provider has no workers to check"),
    ("local", "scheduler"): (None, "scheduler: "),
    ("bullmq", "scheduler"): (None, "scheduler: "),
    ("inngest", "scheduler"): (2, "docjobs: error: the inngest provider has no scheduler to check"),
    ("stub", "scheduler"): (2, "docjobs: error: the stub provider has no scheduler to check"),
}


def run_health(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], environ: dict[str, str], role: str
) -> tuple[int, list[str]]:
    """``docjobs health ROLE`` in this process with ``environ``: its exit code and output lines."""
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    code = cli.main(["health", role])
    captured = capsys.readouterr()
    return code, (captured.out + captured.err).splitlines()


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("provider", PROVIDERS)
def test_each_role_on_each_provider_answers_in_one_line(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    environ: dict[str, str],
    redis_server: RedisServer,
    provider: str,
    role: str,
) -> None:
    port = free_port()  # nothing listens there: the web check fails, in one line
    settings = {
        **environ,
        "NEXT_PRIVATE_JOBS_PROVIDER": provider,
        "NEXT_PRIVATE_REDIS_URL": redis_server.url,
        "INNGEST_SIGNING_KEY": INNGEST_SIGNING_KEY,  # what production asks of inngest; no call is made
        "INNGEST_EVENT_KEY": "test-event-key",
        "PORT": str(port),
    }
    code, lines = run_health(monkeypatch, capsys, settings, role)
    expected_code, start = EXPECTED.get((provider, role), (1, f"web: http://127.0.0.1:{port}/healthz"))
    assert 1 == len(lines), lines
    assert lines[0].startswith(start), lines
    if expected_code is None:
        assert code in (0, 1), lines
    else:
        assert expected_code == code, lines


@pytest.mark.parametrize("role", ["worker", "scheduler"])
@pytest.mark.parametrize("provider", ["inngest", "stub"])
def test_a_role_the_provider_has_not_is_refused_without_a_database_too(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], provider: str, role: str
) -> None:
    settings = {"NODE_ENV": "development", "NEXT_PRIVATE_JOBS_PROVIDER": provider}
    code, lines = run_health(monkeypatch, capsys, settings, role)
    assert [EXPECTED[(provider, role)][1]] == lines
    assert 2 == code


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("provider", ["local", "bullmq"])
def test_a_provider_that_needs_a_database_says_so_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], provider: str, role: str
) -> None:
    settings = {"NODE_ENV": "development", "NEXT_PRIVATE_JOBS_PROVIDER": provider}
    code, lines = run_health(monkeypatch, capsys, settings, role)
    missing = [("NEXT_PRIVATE_DATABASE_URL", "postgresql://")]
    if provider == "bullmq":  # every missing variable, in the one line
        missing.append(("NEXT_PRIVATE_REDIS_URL", "redis://"))
    said = "; ".join(
        f"{name} is required with NEXT_PRIVATE_JOBS_PROVIDER={provider}: set it to a {scheme} URL"
        for name, scheme in missing
    )
    assert [f"docjobs: error: {said}"] == lines
    assert 2 == code
