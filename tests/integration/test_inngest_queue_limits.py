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
from tests.conftest import INNGEST_SIGNING_KEY, app_port, inngest_overrides, provider_overrides
from tests.integration.test_queue_isolation import most_at_once


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

    # The queue's cap, then the seal's own flow control: one seal of a document at a time.
    assert [
        {"limit": 2, "key": f'"{APP_ID}:sealing"', "scope": "env"},
        {"limit": 1, "key": "event.data.documentId"},
    ] == synced_functions["internal.seal-document"].get("concurrency")
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


def test_the_emulator_runs_no_more_of_a_capped_queue_s_jobs_at_once_than_its_cap(
    make_runtime: Callable[..., Runtime],
) -> None:
    emulator = InngestServer(signing_key=INNGEST_SIGNING_KEY, concurrency=4).start()
    try:
        current = make_runtime(**inngest_overrides(emulator), NEXT_PRIVATE_JOBS_SEALING_CONCURRENCY="1")
        with serve(create_app(current), port=app_port(current)) as base:
            assert 200 == emulator.sync(f"{base}/api/jobs").status_code
            emulator.send(
                [{"name": "test.slow-seal", "data": {"key": f"one-{n}", "seconds": 0.3}} for n in range(3)]
            )
            emulator.send(
                [{"name": "test.sleep", "data": {"key": f"free-{n}", "seconds": 0.3}} for n in range(3)]
            )
            runs = emulator.wait_for_runs(6, timeout=30)
    finally:
        emulator.stop()

    url = current.settings.database_url
    assert url is not None
    assert {"completed"} == {run.status for run in runs}
    assert 1 == most_at_once(url, "one-")
    assert 1 < most_at_once(url, "free-")  # the uncapped queue's jobs overlap: the limit is the queue's
