"""The board in a real headless Chromium (Debian's package, driven by Playwright).

Screenshots of each step are saved under ``test-artifacts/board/`` for a person
to look at after the run.
"""

from __future__ import annotations

import psycopg
from playwright.sync_api import Page, expect

from docjobs import jobs
from tests.browser.conftest import ADMIN, shoot, sign_in
from tests.conftest import job_row, wait_for


def test_an_admin_signs_in_retries_a_failed_job_and_sees_it_complete_live(
    page: Page, board_url: str, database_url: str
) -> None:
    failed = jobs.trigger("test.gated", {"key": "browser", "seconds": 2.5})
    wait_for(lambda: job_row(database_url, failed.message_id)["status"] == "FAILED")

    page.goto(f"{board_url}/")
    expect(page).to_have_url(f"{board_url}/sign-in")
    page.get_by_label("Email").fill(ADMIN[0])
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("wrong email or password")
    page.get_by_label("Email").fill(ADMIN[0])
    page.get_by_label("Password").fill(ADMIN[1])
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Queues")).to_be_visible()
    shoot(page, "1-overview")

    page.get_by_role("link", name="Failed", exact=True).first.click()
    expect(page.get_by_role("heading", name="Jobs: failed")).to_be_visible()
    shoot(page, "2-failed-jobs")
    page.get_by_role("link", name="Gated", exact=True).click()  # a job is linked by its name
    expect(page.locator("pre.error")).to_contain_text("the gate of browser is closed")
    shoot(page, "3-failed-job")

    with psycopg.connect(database_url) as conn:  # what an operator fixes before retrying
        conn.execute("INSERT INTO test_event (key, kind, pid) VALUES ('browser', 'gate-open', 0)")
    page.evaluate("window.beforeRetry = true")
    page.get_by_role("button", name="Retry", exact=True).click()
    status = page.locator("h1 .status")
    expect(status).not_to_have_text("FAILED")
    page.evaluate("window.sinceRetry = true")  # survives only if the page is never reloaded
    expect(status).to_have_text("COMPLETED", timeout=15_000)
    assert page.evaluate("window.sinceRetry") is True
    assert page.locator("#live").get_attribute("data-refreshed-at") is not None
    shoot(page, "4-completed-live")
    assert "COMPLETED" == job_row(database_url, failed.message_id)["status"]


def test_a_destructive_action_asks_first(page: Page, board_url: str, database_url: str) -> None:
    waiting = jobs.trigger("test.record", {"key": "kept"}, delay=3600)
    page.goto(f"{board_url}/sign-in")
    page.get_by_label("Email").fill(ADMIN[0])
    page.get_by_label("Password").fill(ADMIN[1])
    page.get_by_role("button", name="Sign in").click()
    page.goto(f"{board_url}/jobs/{waiting.message_id}")
    questions: list[str] = []

    def answer(dialog: object, accept: bool) -> None:
        questions.append(dialog.message)  # type: ignore[attr-defined]
        dialog.accept() if accept else dialog.dismiss()  # type: ignore[attr-defined]

    page.once("dialog", lambda dialog: answer(dialog, False))
    page.get_by_role("button", name="Delete").click()
    page.wait_for_timeout(300)
    assert "PENDING" == job_row(database_url, waiting.message_id)["status"]
    page.once("dialog", lambda dialog: answer(dialog, True))
    page.get_by_role("button", name="Delete").click()
    expect(page.get_by_role("heading", name="Jobs")).to_be_visible()
    shoot(page, "5-after-delete")
    assert [f"Delete Record (…{waiting.message_id[-12:]})? This cannot be undone."] * 2 == questions
    with psycopg.connect(database_url) as conn:
        assert (0,) == conn.execute(
            "SELECT count(*) FROM background_job WHERE id = %s", (waiting.message_id,)
        ).fetchone()


def test_the_sign_in_page_and_the_audit_log_read_as_an_admin_expects(
    page: Page, board_url: str, database_url: str
) -> None:
    page.goto(f"{board_url}/sign-in")
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    shoot(page, "6-sign-in")
    sign_in(page, board_url)
    waiting = jobs.trigger("test.record", {"key": "audited"}, delay=3600)
    page.goto(f"{board_url}/jobs/{waiting.message_id}")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Cancel").click()
    expect(page.locator("h1 .status")).to_have_text("CANCELLED")

    page.get_by_role("link", name="Audit log").click()
    row = page.locator("table.audit tbody tr").first
    expect(row).to_contain_text(ADMIN[0])
    # The job by its distinctive end, whole in the tooltip; details as words, not JSON.
    expect(row.locator("code.job-id")).to_have_text(f"…{waiting.message_id[-12:]}")
    assert waiting.message_id == row.locator("code.job-id").get_attribute("title")
    details = row.locator("td.audit-detail").inner_text()
    assert "{" not in details and '"' not in details, details
    assert "UTC" in (row.locator("time").get_attribute("title") or "")
    shoot(page, "7-audit-log")
