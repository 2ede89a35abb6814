"""A queue's cap reaches Inngest as concurrency shared by the queue's functions (issue 22)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from docjobs_devkit.http import serve
from docjobs_devkit.inngest import InngestServer

from docjobs.defaults import DEFAULT_INNGEST_APP_ID as APP_ID
from docjobs.runtime import Runtime
from docjobs.web.app import create_app
from tests.conftest import app_port, provider_overrides


@pytest.fixture
def synced_functions(
    request: pytest.FixtureRequest, make_runtime: Callable[..., Runtime], inngest_emulator: InngestServer
) -> dict[str, dict[str, Any]]:
    """The function configs the app synced, by job id, with emails capped at 5."""
    current = make_runtime(**provider_overrides(request, "inngest"), NEXT_PRIVATE_JOBS_EMAILS_CONCURRENCY="5")
    with serve(create_app(current), port=app_port(current)) as base:
        assert 200 == inngest_emulator.sync(f"{base}/api/jobs").status_code
    (registration,) = inngest_emulator.registrations
    return {config["id"].removeprefix(f"{APP_ID}-"): config for config in registration["functions"]}


def test_the_functions_of_a_capped_queue_share_one_concurrency_key_of_the_environment(
    synced_functions: dict[str, dict[str, Any]],
) -> None:
    emails = {
        job: config.get("concurrency") for job, config in synced_functions.items() if job.startswith("send.")
    }

    assert [{"limit": 2, "key": f'"{APP_ID}:sealing"', "scope": "env"}] == synced_functions[
        "internal.seal-document"
    ].get("concurrency")
    assert [{"limit": 4, "key": f'"{APP_ID}:webhooks"', "scope": "env"}] == synced_functions[
        "internal.execute-webhook"
    ].get("concurrency")
    assert len(emails) >= 12
    capped = [{"limit": 5, "key": f'"{APP_ID}:emails"', "scope": "env"}]
    assert all(capped == concurrency for concurrency in emails.values()), emails


def test_an_uncapped_queue_s_functions_sync_without_concurrency(
    synced_functions: dict[str, dict[str, Any]],
) -> None:
    assert synced_functions["internal.cleanup-background-jobs"].get("concurrency") is None
    assert synced_functions["test.record"].get("concurrency") is None
