"""What the outside trial of the board found (issue 20, round 2), in a real Chromium: long names
wrap, no page asks for a favicon that is not there, a trigger in production asks first, and a
retried job reads as it now is. Screenshots: ``test-artifacts/board/trial-*.png``."""

from __future__ import annotations

import re

import psycopg
from playwright.sync_api import Dialog, Page, Response, expect

from docjobs import jobs
from tests.browser.conftest import shoot, sign_in
from tests.conftest import job_row

#: A display name as long as the trial's (56 characters).
LONG_NAME = "Send Signing Request Reminder Email To Every Co-Signatory"


def test_a_long_display_name_wraps_and_keeps_the_last_error_on_screen(
    page: Page, board_url: str, database_url: str
) -> None:
    job_id = jobs.trigger("test.record", {"key": "long"}, delay=3600).message_id
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "UPDATE background_job SET name = %s, status = 'FAILED', attempts = 4, completed_at = now(),"
            " last_error = 'SMTPRecipientsRefused: every recipient was refused' WHERE id = %s",
            (LONG_NAME, job_id),
        )
    missing: list[str] = []
    page.on("response", lambda response: _note_missing(response, missing))
    sign_in(page, board_url)
    page.goto(f"{board_url}/jobs")
    name = page.get_by_role("link", name=LONG_NAME)
    expect(name).to_be_visible()
    line_height = name.evaluate("e => parseFloat(getComputedStyle(e).lineHeight)")
    assert name.bounding_box()["height"] > 1.5 * line_height  # type: ignore[index]  # it wraps
    header = page.locator("th", has_text="Last error").bounding_box()
    error = page.locator("td.last-error", has_text="every recipient was refused").bounding_box()
    assert header is not None and error is not None
    assert header["x"] + header["width"] <= 1280 and error["x"] + error["width"] <= 1280
    shoot(page, "trial-1-long-name")
    page.goto(f"{board_url}/jobs/{job_id}")
    assert [] == missing  # the favicon above all: every page asked for one, and got a 404


def test_triggering_in_production_asks_first(page: Page, board_url: str, database_url: str) -> None:
    sign_in(page, board_url)
    page.goto(f"{board_url}/trigger?job=test.record")
    questions: list[str] = []

    def answer(dialog: Dialog, accept: bool) -> None:
        questions.append(dialog.message)
        dialog.accept() if accept else dialog.dismiss()

    page.once("dialog", lambda dialog: answer(dialog, accept=False))
    page.get_by_role("button", name="Trigger Record").click()
    expect(page.get_by_role("heading", name="Trigger a job")).to_be_visible()
    with psycopg.connect(database_url) as conn:
        assert (0,) == conn.execute("SELECT count(*) FROM background_job").fetchone()
    page.once("dialog", lambda dialog: answer(dialog, accept=True))
    page.get_by_role("button", name="Trigger Record").click()
    expect(page).to_have_url(re.compile(r"/jobs/[^/]+$"))
    job_id = page.url.rsplit("/", 1)[1]
    assert "test.record" == job_row(database_url, job_id)["actor"]
    assert [questions[0]] * 2 == questions
    assert questions[0].startswith("Trigger Record (test.record) now? This is production")
    shoot(page, "trial-2-triggered")


def test_a_cancelled_then_retried_job_with_an_edited_payload_reads_as_it_now_is(
    page: Page, board_url: str, database_url: str
) -> None:
    job_id = jobs.trigger("test.gated", {"key": "held"}, delay=3600).message_id
    with psycopg.connect(database_url) as conn:
        # A queue nobody consumes: the retried job waits, as the trial's did.
        conn.execute(
            "UPDATE background_job SET queue = 'parked', submitted_at = now() - interval '2 hours' WHERE id = %s",
            (job_id,),
        )
    sign_in(page, board_url)
    page.goto(f"{board_url}/jobs/{job_id}")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Cancel").click()
    expect(page.locator("h1 .status")).to_have_text("CANCELLED")
    page.get_by_label("Retry with this payload").fill('{"key": "edited", "seconds": 60}')
    page.get_by_role("button", name="Retry with edited payload").click()
    expect(page.locator("p.edited")).to_contain_text("Edited on the board by grace@example.com")
    past = page.locator("pre.past-error", has_text="earlier: cancelled on the board")
    expect(past).to_be_visible()
    assert "rgb(180, 35, 24)" != past.evaluate("e => getComputedStyle(e).color")  # not the failure red
    page.locator("details.payload-before summary").click()
    expect(page.locator("details.payload-before pre")).to_contain_text('"held"')
    expect(page.locator("dl.options")).not_to_contain_text("delay")
    shoot(page, "trial-3-retried-job")


def _note_missing(response: Response, missing: list[str]) -> None:
    if response.status == 404:
        missing.append(response.url)
