"""The jobs list and job pages in a real Chromium, as an admin reads them (issue 20).

Screenshots go to ``test-artifacts/board/lists-*.png``; a person looks at them in review.
"""

from __future__ import annotations

import psycopg
from playwright.sync_api import Page, expect

from docjobs import jobs
from tests.browser.conftest import shoot, sign_in
from tests.conftest import job_row, wait_for

#: The board's colour for failures (``--bad`` in board.css).
BAD_RED = "rgb(180, 35, 24)"


def test_the_jobs_list_names_jobs_counts_them_and_keeps_ids_on_one_line(
    page: Page, board_url: str, database_url: str
) -> None:
    failed = jobs.trigger("test.gated", {"key": "closed"}).message_id
    flaky = jobs.trigger("test.fail_once", {"key": "flaky"}).message_id
    wait_for(lambda: (job_row(database_url, failed)["status"], job_row(database_url, flaky)["status"])
             == ("FAILED", "COMPLETED"))  # fmt: skip
    delayed = jobs.trigger("internal.seal-document", {"documentId": 73}, delay=3600).message_id
    sign_in(page, board_url)
    page.goto(f"{board_url}/jobs")
    expect(page.locator("nav.pages .range")).to_have_text("1–3 of 3")
    shoot(page, "lists-1-jobs")

    # A job is linked by its name; its id is short, on one line, and whole in the tooltip.
    link = page.get_by_role("link", name="Seal Document", exact=True)
    expect(link).to_be_visible()
    short = page.locator(f'code.job-id[title="{delayed}"]')
    expect(short).to_have_text(f"…{delayed[-12:]}")
    line_height = short.evaluate("e => parseFloat(getComputedStyle(e).lineHeight)")
    assert short.bounding_box()["height"] < 1.5 * line_height  # type: ignore[index]
    # Numbers under right-aligned headers; a failed job's attempts in red; an old error muted.
    attempts = page.locator("th", has_text="Attempts")
    assert "right" == attempts.evaluate("e => getComputedStyle(e).textAlign")
    failed_row = page.locator("tr", has=page.locator(f'input[value="{failed}"]'))
    assert BAD_RED == failed_row.locator("td.failed-count").evaluate("e => getComputedStyle(e).color")
    past = page.locator("tr", has=page.locator(f'input[value="{flaky}"]')).locator("td.past-error")
    expect(past).to_contain_text("failed once, then succeeded: RuntimeError: first attempt fails")
    assert BAD_RED != past.evaluate("e => getComputedStyle(e).color")
    expect(page.locator(f'tr:has(input[value="{flaky}"]) time').first).to_have_attribute(
        "title", f"{job_row(database_url, flaky)['submitted_at']:%Y-%m-%d %H:%M:%S} UTC"
    )

    # Many jobs: the count, and numbered pages around this one.
    jobs.trigger_many("test.record", [{"key": f"many {n}"} for n in range(120)], delay=3600)
    page.goto(f"{board_url}/jobs?page=2")
    expect(page.locator("nav.pages .range")).to_have_text("51–100 of 123")
    expect(page.locator("nav.pages a, nav.pages span.current")).to_have_text(
        ["‹ Newer", "1", "2", "3", "Older ›"]
    )
    shoot(page, "lists-4-page-2")

    page.goto(f"{board_url}/jobs?job=internal.seal-document")
    page.get_by_role("link", name="Seal Document", exact=True).click()
    expect(page.get_by_role("heading", name="Seal Document")).to_be_visible()
    actions = page.locator(".actions button")
    expect(actions).to_have_text(["Run now", "Cancel", "Delete"])
    shoot(page, "lists-2-delayed-job")


def test_run_now_then_the_completed_job_offers_only_run_again_and_delete(
    page: Page, board_url: str, database_url: str
) -> None:
    delayed = jobs.trigger("test.record", {"key": "later"}, delay=3600).message_id
    sign_in(page, board_url)
    page.goto(f"{board_url}/jobs/{delayed}")
    expect(page.locator("dl.facts").first).to_contain_text("UTC")
    page.get_by_role("button", name="Run now").click()
    expect(page.locator("h1 .status")).to_have_text("COMPLETED", timeout=15_000)
    expect(page.locator(".actions button")).to_have_text(["Run again", "Delete"])
    shoot(page, "lists-3-completed-job")

    questions: list[str] = []
    page.once("dialog", lambda dialog: (questions.append(dialog.message), dialog.accept()))
    page.get_by_role("button", name="Run again").click()
    expect(page).not_to_have_url(f"{board_url}/jobs/{delayed}")
    assert [f"Run Record (…{delayed[-12:]}) again as a new job? Its work (emails, webhooks, documents) "
            "is done again."] == questions  # fmt: skip
    expect(page.locator("h1 .status")).to_have_text("COMPLETED", timeout=15_000)
    with psycopg.connect(database_url) as conn:
        (runs,) = conn.execute("SELECT count(*) FROM background_job WHERE actor = 'test.record'").fetchone()
    assert 2 == runs
    assert "COMPLETED" == job_row(database_url, delayed)["status"]


def test_a_job_that_failed_once_names_the_worker_of_its_attempt_as_the_workers_table_does(
    page: Page, board_url: str, database_url: str
) -> None:
    flaky = jobs.trigger("test.fail_once", {"key": "named"}).message_id
    wait_for(lambda: job_row(database_url, flaky)["status"] == "COMPLETED")
    sign_in(page, board_url)
    workers = page.locator("h2:has-text('Workers') + table tbody td:first-child")
    expect(workers).to_have_count(1)
    named = workers.inner_text()
    page.goto(f"{board_url}/jobs/{flaky}")
    attempt = page.locator("ol.attempts li").first
    expect(attempt).to_contain_text(f"on {named}")
    past = attempt.locator("pre.past-error")
    expect(past).to_contain_text("first attempt fails")
    assert BAD_RED != past.evaluate("e => getComputedStyle(e).color")
    shoot(page, "lists-5-failed-once-job")
