"""The ``provider`` fixture: each conformance test runs once per provider (tests/support/providers.py).

Marks for a param go through :func:`gap` and :func:`only_docjobs`, so a test says in
one place which provider falls short and why.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from docjobs_devkit import RedisServer
from docjobs_devkit.inngest import InngestServer

from docjobs.brokers import outbox
from docjobs.runtime import Runtime
from tests.conftest import app_port, inngest_overrides, provider_overrides
from tests.support.providers import (
    DOCJOBS_PROVIDERS,
    DRAMATIQ_PROVIDERS,
    DramatiqRedisHarness,
    DramatiqStubHarness,
    Harness,
    InngestHarness,
    RuntimeHarness,
    StubHarness,
)

#: A lost after-commit send is relayed after this long (5 s in production).
OUTBOX_STALE_SECONDS = 0.3
#: bullmq's keeper relays the outbox each round, a quarter of this lease.
BULLMQ_LEASE_SECONDS = "2"

PROVIDERS = (*DRAMATIQ_PROVIDERS, *DOCJOBS_PROVIDERS)


def gap(provider: str, reason: str) -> pytest.MarkDecorator:
    """Mark ``provider``'s run of a test as a known gap of issue 19 (strict: it must fail)."""
    return pytest.mark.xfail_provider(provider, reason=f"issue 19: {reason}")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "xfail_provider(name, reason): the test fails on that provider for the reason given"
    )
    config.addinivalue_line(
        "markers", "docjobs_only: the behaviour is docjobs' (jobs.trigger, conn=, run_task)"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "provider" not in metafunc.fixturenames:
        return
    names = DOCJOBS_PROVIDERS if metafunc.definition.get_closest_marker("docjobs_only") else PROVIDERS
    gaps = {
        mark.args[0]: mark.kwargs["reason"] for mark in metafunc.definition.iter_markers("xfail_provider")
    }
    unknown = set(gaps) - set(names)
    assert not unknown, f"{metafunc.definition.name}: a gap on a provider it does not run on: {unknown}"
    params = [
        pytest.param(
            name, marks=[pytest.mark.xfail(strict=True, reason=gaps[name])] if name in gaps else [], id=name
        )
        for name in names
    ]
    metafunc.parametrize("provider", params, indirect=True)


@pytest.fixture
def provider(request: pytest.FixtureRequest) -> Iterator[Harness]:
    """The provider named by the param, ready for actors; stopped and its actors forgotten after."""
    name: str = request.param
    harness = _build(request, name)
    try:
        yield harness
    finally:
        harness.close()


def _build(request: pytest.FixtureRequest, name: str) -> Harness:
    if name == "dramatiq-stub":
        return DramatiqStubHarness()
    if name == "stub":
        return StubHarness()
    if name == "dramatiq-redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        return DramatiqRedisHarness(server.url)
    # Only docjobs' providers need a database: Dramatiq's run without one.
    monkeypatch: pytest.MonkeyPatch = request.getfixturevalue("monkeypatch")
    make_runtime: Callable[..., Runtime] = request.getfixturevalue("make_runtime")
    if name == "local":
        return RuntimeHarness("local", make_runtime())
    if name == "bullmq":
        monkeypatch.setattr(outbox, "OUTBOX_STALE_SECONDS", OUTBOX_STALE_SECONDS)
        overrides = provider_overrides(request, "bullmq")
        return RuntimeHarness(
            "bullmq", make_runtime(**overrides, NEXT_PRIVATE_JOBS_LEASE_SECONDS=BULLMQ_LEASE_SECONDS)
        )
    if name == "inngest":
        monkeypatch.setattr(outbox, "OUTBOX_STALE_SECONDS", OUTBOX_STALE_SECONDS)
        monkeypatch.setattr(outbox, "RELAY_INTERVAL_SECONDS", OUTBOX_STALE_SECONDS)
        emulator: InngestServer = request.getfixturevalue("inngest_emulator")
        current = make_runtime(**inngest_overrides(emulator))
        return InngestHarness(current, emulator, app_port(current))
    raise AssertionError(f"no provider named {name!r}")
