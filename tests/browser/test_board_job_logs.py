"""A running job's log lines and progress on its board page, live, in a real Chromium (issue 22).

Screenshots go to ``test-artifacts/board/joblogs-*.png``.
"""

from __future__ import annotations

import psycopg
from playwright.sync_api import Page, expect

from docjobs import jobs
from tests.browser.conftest import shoot, sign_in
from tests.conftest import job_row, wait_for
from tests.support import joblog_actors  # noqa: F401 - declares test.log_gated


def test_the_job_page_shows_new_lines_and_progress_while_the_job_runs_without_a_reload(
    page: Page, board_url: str, database_url: str
) -> None:
    job = jobs.trigger("test.log_gated", {"key": "live"}).message_id
    wait_for(lambda: job_row(database_url, job)["status"] == "PROCESSING")
    sign_in(page, board_url)
    page.goto(f"{board_url}/jobs/{job}")
    lines = page.locator("ol.job-log li .line")
    bar = page.locator(".job-progress progress")
    expect(lines).to_have_text(["step 1 of 2: <b>fetched</b> <script>document.title = 'owned'</script>"])
    expect(bar).to_have_attribute("value", "40")
    # The markup in the line is text: no element was made of it, and its script never ran.
    expect(page.locator("ol.job-log b")).to_have_count(0)
    expect(page.locator("ol.job-log script")).to_have_count(0)
    assert "owned" not in page.title()
    shoot(page, "joblogs-1-running")
    page.evaluate("window.keptFromBeforeTheGate = true")  # gone if the page reloads

    with psycopg.connect(database_url) as conn:
        conn.execute("INSERT INTO test_event (job_id, key, kind, pid) VALUES (NULL, 'live', 'gate-open', 0)")
    expect(page.locator("h1 .status")).to_have_text("COMPLETED", timeout=15_000)
    expect(lines).to_have_text(
        ["step 1 of 2: <b>fetched</b> <script>document.title = 'owned'</script>", "step 2 of 2: sealed"]
    )
    expect(bar).to_have_attribute("value", "100")
    expect(page.locator(".job-progress .progress-value")).to_have_text("100%")
    assert page.evaluate("window.keptFromBeforeTheGate === true")
    assert "owned" not in page.title()
    shoot(page, "joblogs-2-finished")
