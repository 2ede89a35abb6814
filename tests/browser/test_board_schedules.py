"""The schedules page in a real Chromium: pause, resume and run now, each seen on the page.

Screenshots go to ``test-artifacts/board/schedules-*.png``; a person looks at them in review.
"""

from __future__ import annotations

import psycopg
from playwright.sync_api import Page, expect

from tests.browser.conftest import shoot, sign_in

SCHEDULE = "internal.cleanup-rate-limits"


def paused_in_database(database_url: str) -> bool | None:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT paused FROM cron_schedule_state WHERE schedule = %s", (SCHEDULE,)
        ).fetchone()
    return None if row is None else bool(row[0])


def test_an_admin_pauses_resumes_and_runs_a_schedule_from_its_page(
    page: Page, board_url: str, database_url: str
) -> None:
    sign_in(page, board_url)
    page.get_by_role("link", name="Firings, run now, pause and resume").click()
    expect(page.get_by_role("heading", name="Schedules", exact=True)).to_be_visible()
    section = page.locator(f'section[data-schedule="{SCHEDULE}"]')
    expect(section.get_by_role("heading")).to_have_text(SCHEDULE)
    expect(section.get_by_role("cell", name="No firing yet.")).to_be_visible()

    section.get_by_role("button", name="Pause").click()
    expect(section.locator(".badge", has_text="paused")).to_be_visible()
    expect(section).to_contain_text("skipped while paused")
    assert paused_in_database(database_url) is True
    shoot(page, "schedules-1-paused")

    section.get_by_role("button", name="Resume").click()
    expect(section.get_by_role("button", name="Pause")).to_be_visible()
    expect(section.locator(".badge", has_text="paused")).to_have_count(0)
    assert paused_in_database(database_url) is False

    section.get_by_role("button", name="Run now").click()
    firing = section.locator("tbody tr", has=page.locator(".badge", has_text="run now"))
    expect(firing).to_have_count(1)
    # The page refreshes itself: the firing's outcome shows once the worker has run it.
    expect(firing.get_by_role("link", name="succeeded")).to_be_visible(timeout=15_000)
    shoot(page, "schedules-2-run-now")

    page.get_by_role("link", name="Audit log").click()
    expect(page.locator("body")).to_contain_text("schedule run-now")
    expect(page.locator("body")).to_contain_text("schedule resume")
