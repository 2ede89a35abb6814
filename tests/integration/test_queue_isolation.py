"""Queue isolation (issue 22): slow seals cannot hold the threads an invitation email needs.

Each test runs a real worker with the provider's default caps (sealing: 2 at a time).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import dramatiq
import psycopg
import pytest
from docjobs_devkit.pdfs import sample_pdf
from docjobs_devkit.smtp import Mailbox

from docjobs import jobs
from docjobs.domain import Flows, RecipientSpec
from docjobs.runtime import Runtime
from tests.conftest import provider_overrides, wait_for
from tests.support.actors import slow_seal_job

PDF = sample_pdf(1, title="Offer")
#: Longer than an email takes, by far: an email stuck behind one shows.
SEAL_SECONDS = 2.0
SEALS = 20
#: Scheduling noise on a shared machine, on top of the slowest normal latency.
MARGIN_SECONDS = 0.5


def started(url: str, prefix: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM test_event WHERE kind = 'started' AND key LIKE %s", (prefix + "%",)
        ).fetchone()
    assert row is not None
    return int(row[0])


@pytest.fixture(params=["local", "bullmq"])
def signing_service(
    request: pytest.FixtureRequest,
    make_runtime: Callable[..., Runtime],
    mailbox: Mailbox,
    start_worker: Callable[..., dramatiq.Worker],
) -> Runtime:
    current = make_runtime(
        **provider_overrides(request, request.param),
        NEXT_PRIVATE_SMTP_HOST="127.0.0.1",
        NEXT_PRIVATE_SMTP_PORT=str(mailbox.port),
        NEXT_PUBLIC_WEBAPP_URL="https://sign.example.com",
    )
    start_worker(current.broker, threads=4)
    return current


def test_twenty_slow_seals_do_not_delay_an_invitation_email(
    signing_service: Runtime, mailbox: Mailbox
) -> None:
    flows = Flows()
    owner = flows.create_user("olivia@example.com", "Olivia Owner")
    document = flows.create_document(owner["id"], "Offer", PDF, [RecipientSpec("alice@example.com", "Alice")])
    flows.send_document(document["id"])
    mailbox.wait_for(1)  # the first invitation: connections warm
    (recipient,) = flows.recipients(document["id"])
    invitation: dict[str, Any] = {
        "userId": owner["id"],
        "documentId": document["id"],
        "recipientId": recipient["id"],
    }

    def email_latency() -> float:
        count = len(mailbox.messages) + 1
        sent = time.monotonic()
        jobs.trigger("send.signing.requested.email", invitation)
        mailbox.wait_for(count, timeout=30)
        return time.monotonic() - sent

    normal = max(email_latency() for _ in range(3))
    for number in range(SEALS):
        jobs.trigger("test.slow-seal", {"key": f"seal-{number}", "seconds": SEAL_SECONDS})
    url = signing_service.settings.database_url
    assert url is not None
    wait_for(lambda: started(url, "seal-") >= 1, timeout=10)

    busy = email_latency()

    assert busy <= normal + MARGIN_SECONDS, f"{busy:.2f}s behind the seals, {normal:.2f}s normally"
    assert started(url, "seal-") < SEALS  # the seals were still queued when the email went


def most_at_once(url: str, prefix: str) -> int:
    """The most jobs whose keys start with ``prefix`` that were running at the same moment."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT at, CASE kind WHEN 'started' THEN 1 ELSE -1 END FROM test_event"
            " WHERE key LIKE %s AND kind IN ('started', 'finished') ORDER BY at, kind DESC",
            (prefix + "%",),
        ).fetchall()
    running = most = 0
    for _, step in rows:
        running += step
        most = max(most, running)
    return most


@pytest.mark.parametrize("provider", ["local", "bullmq"])
def test_a_queue_s_cap_bounds_how_many_of_its_jobs_a_worker_runs_at_once(
    request: pytest.FixtureRequest,
    provider: str,
    make_runtime: Callable[..., Runtime],
    start_worker: Callable[..., dramatiq.Worker],
) -> None:
    current = make_runtime(**provider_overrides(request, provider), NEXT_PRIVATE_JOBS_SEALING_CONCURRENCY="1")
    start_worker(current.broker, threads=4)

    for number in range(4):
        jobs.trigger("test.slow-seal", {"key": f"capped-{number}", "seconds": 0.3})
    current.join(timeout_seconds=30)

    url = current.settings.database_url
    assert url is not None
    assert 4 == started(url, "capped-")
    assert 1 == most_at_once(url, "capped-")


@pytest.mark.parametrize("provider", ["local", "bullmq"])
def test_a_seal_enqueued_on_default_before_the_upgrade_still_runs(
    request: pytest.FixtureRequest,
    provider: str,
    make_runtime: Callable[..., Runtime],
    start_worker: Callable[..., dramatiq.Worker],
) -> None:
    current = make_runtime(**provider_overrides(request, provider))
    before_upgrade = slow_seal_job.message(key="old-seal", seconds=0).copy(queue_name="default")
    current.broker.enqueue(before_upgrade)
    start_worker(current.broker, threads=2)

    current.join(timeout_seconds=30)

    url = current.settings.database_url
    assert url is not None
    assert "sealing" == slow_seal_job.queue_name
    assert 1 == started(url, "old-seal")
