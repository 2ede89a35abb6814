"""The overview's chart at each window, and the trigger page's payload help, in a real Chromium.

Screenshots go to ``test-artifacts/board/`` (``overview-15m.png``, ``overview-1h.png``,
``overview-24h.png``, ``trigger-*.png``) for a reviewer to look at.
"""

from __future__ import annotations

import json
import re

import psycopg
from playwright.sync_api import Page, expect

from tests.browser.conftest import shoot, sign_in

#: Finished jobs spread over the last day: (minutes ago, completed, failed).
HISTORY = [(1, 6, 1), (3, 9, 0), (7, 4, 2), (12, 8, 0), (25, 12, 3), (48, 5, 0), (150, 20, 4), (600, 30, 1)]


def _history(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        for minutes, completed, failed in HISTORY:
            for n in range(completed + failed):
                conn.execute(
                    "INSERT INTO background_job (id, actor, name, status, started_at, completed_at) "
                    "VALUES (%s, 'test.record', 'test.record', %s, "
                    "now() - %s * interval '1 minute' - interval '800 ms', now() - %s * interval '1 minute')",
                    (f"past-{minutes}-{n}", "COMPLETED" if n < completed else "FAILED", minutes, minutes),
                )


def test_the_overview_chart_reads_at_a_glance_at_each_window(
    page: Page, board_url: str, database_url: str
) -> None:
    _history(database_url)
    sign_in(page, board_url)
    chart = page.locator("svg.chart")
    for label, name, finished in (
        ("15 min", "15m", (27, 3)),
        ("1 h", "1h", (44, 6)),
        ("24 h", "24h", (94, 11)),
    ):
        page.get_by_role("link", name=label, exact=True).click()
        expect(page.get_by_role("link", name=label, exact=True)).to_have_attribute("aria-current", "page")
        heading = page.get_by_role("heading", name=f"Jobs finished in the last {label}")
        expect(heading).to_be_visible()
        figures = page.locator("p.figures")
        expect(figures).to_contain_text(f"{finished[0]} completed, {finished[1]} failed")
        box = chart.bounding_box()
        assert box is not None and box["width"] > 900 and 200 < box["height"] < 320, box  # fills the page
        line = page.locator("svg.chart polyline.completed").bounding_box()
        assert line is not None and line["width"] > 0.85 * box["width"], line  # across the whole window
        assert line["height"] > 0.5 * box["height"], line  # the busiest bucket reaches up the axis
        count_labels = chart.locator(".count-axis text").all_text_contents()
        assert "0" == count_labels[0] and len(count_labels) >= 3, count_labels
        time_labels = chart.locator(".time-axis text").all_text_contents()
        assert len(time_labels) >= 4, time_labels
        for legend in ("Completed", "Failed", "time (UTC)"):
            expect(chart.get_by_text(legend, exact=True)).to_be_visible()
        assert f"?window={name}" in page.url
        shoot(page, f"overview-{name}")
    failed_cell = page.locator("table.counts td.state-failed")
    expect(failed_cell).to_have_class("num state-failed failed-count")
    assert "right" == failed_cell.evaluate("cell => getComputedStyle(cell).textAlign")
    header = page.locator("table.counts th", has_text="failed")
    assert "right" == header.evaluate("cell => getComputedStyle(cell).textAlign")


def test_the_trigger_page_shows_the_chosen_jobs_fields_and_a_valid_example(
    page: Page, board_url: str
) -> None:
    sign_in(page, board_url)
    page.get_by_role("link", name="Trigger a job").click()
    page.get_by_role("combobox", name="Job").select_option(
        "internal.seal-document"
    )  # reloads with its fields
    expect(
        page.get_by_role("heading", name="Payload of Seal Document internal.seal-document")
    ).to_be_visible()
    rows = page.locator("table.payload-fields tbody tr")
    expect(rows.first).to_have_text("documentId integer required -")
    expect(rows.nth(1)).to_have_text("sendEmail true or false optional true")
    payload = page.get_by_role("textbox", name="Payload")
    assert {"documentId": 1, "sendEmail": True, "isResealing": False} == json.loads(payload.input_value())
    shoot(page, "trigger-seal-document")

    # An app's own actor (declared as any app declares one): its fields, and an example that runs.
    page.get_by_role("combobox", name="Job").select_option("test.fail_when")
    expect(rows.nth(1)).to_have_text("fail true or false required -")
    assert {"key": "text", "fail": False} == json.loads(payload.input_value())
    page.on("dialog", lambda dialog: dialog.accept())  # production: a trigger asks first
    page.get_by_role("button", name="Trigger Fail When").click()
    expect(page).to_have_url(
        re.compile(rf"{re.escape(board_url)}/jobs/[0-9a-f-]{{36}}$")
    )  # the new job's page

    page.goto(f"{board_url}/trigger?job=test.fail_when")
    payload.fill('{"key": "x", "fail": "maybe"}')
    page.get_by_role("button", name="Trigger Fail When").click()
    alert = page.get_by_role("alert")
    expect(alert).to_have_text(
        "test.fail_when: fail: Input should be a valid boolean, unable to interpret input (got 'maybe')"
    )
    expect(rows.nth(1)).to_have_text("fail true or false required -")  # the fields stay in view
    assert '{"key": "x", "fail": "maybe"}' == payload.input_value()  # and what was typed
    shoot(page, "trigger-refused")
    page.get_by_role("link", name="Start again from the example payload").click()
    assert {"key": "text", "fail": False} == json.loads(payload.input_value())

    # The page's JSON twin, and an unknown job refused in one line naming the closest.
    described = page.request.get(f"{board_url}/api/trigger?job=internal.seal-document").json()
    assert {"documentId": 1, "sendEmail": True, "isResealing": False} == described["example"]
    assert {
        "name": "documentId",
        "type": "integer",
        "required": True,
        "default": None,
        "description": None,
    } == (described["fields"][0])
    unknown = page.request.get(f"{board_url}/api/trigger?job=internal.seal-documents")
    assert (404, "no job 'internal.seal-documents' is declared; did you mean 'internal.seal-document'?") == (
        unknown.status,
        unknown.json()["error"],
    )


def test_each_queue_shows_its_depth_and_how_long_its_jobs_waited(
    page: Page, board_url: str, database_url: str
) -> None:
    with psycopg.connect(database_url) as conn:
        for n in range(3):  # due and waiting
            conn.execute(
                "INSERT INTO background_job (id, queue, actor, name, run_at) "
                "VALUES (%s, 'emails', 'test.record', 'test.record', now() - interval '1 minute')",
                (f"waiting-{n}",),
            )
        for n in range(20):  # ended in the last hour, each started 4 s after it was due
            conn.execute(
                "INSERT INTO background_job (id, queue, actor, name, status, run_at, started_at, completed_at) "
                "VALUES (%s, 'emails', 'test.record', 'test.record', 'COMPLETED', now() - interval '10 minutes', "
                "now() - interval '10 minutes' + interval '4 s', now() - interval '9 minutes')",
                (f"ended-{n}",),
            )
    sign_in(page, board_url)
    row = page.locator("table.counts tbody tr", has_text="emails")
    expect(row.locator("td.queue-depth")).to_have_text("3")
    expect(row.locator("td.queue-wait")).to_contain_text("4")
    assert re.search(r"4(\.0)?\s*s.*/.*4(\.0)?\s*s", row.locator("td.queue-wait").inner_text()), (
        row.inner_text()
    )
    shoot(page, "overview-queues")
