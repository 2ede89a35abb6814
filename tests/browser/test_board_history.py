"""The history page in a real Chromium: its chart and per-job-type table at 24 h and 7 days.

Screenshots go to ``test-artifacts/board/`` (``history-24h.png``, ``history-7d.png``).
"""

from __future__ import annotations

import psycopg
from playwright.sync_api import Page, expect

from docjobs import runtime
from tests.browser.conftest import shoot, sign_in

#: Finished jobs over the last week: (hours ago, job, completed, failed).
HISTORY = [
    (1, "send.signing.requested.email", 12, 1),
    (5, "internal.seal-document", 6, 2),
    (20, "send.signing.requested.email", 9, 0),
    (50, "internal.seal-document", 15, 3),
    (120, "internal.execute-webhook", 30, 4),
]


def _history(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        for hours, job, completed, failed in HISTORY:
            conn.execute(
                "INSERT INTO background_job (id, actor, name, status, run_at, started_at, completed_at) "
                "SELECT %s || n, %s, %s, CASE WHEN n <= %s THEN 'COMPLETED' ELSE 'FAILED' END, "
                "now() - %s * interval '1 hour' - interval '3 s', now() - %s * interval '1 hour' - interval '2 s', "
                "now() - %s * interval '1 hour' FROM generate_series(1, %s) AS n",
                (f"past-{hours}-", job, job, completed, hours, hours, hours, completed + failed),
            )
    store = runtime.current().store
    assert store is not None
    store.rollups.roll_up()


def test_the_history_page_draws_its_chart_and_table_for_a_day_and_a_week(
    page: Page, board_url: str, database_url: str
) -> None:
    _history(database_url)
    sign_in(page, board_url)
    page.get_by_role("link", name="History: 24 h and 7 days").click()
    for label, name, finished, types in (
        ("24 h", "24h", (27, 3), {"send.signing.requested.email": "21", "internal.seal-document": "6"}),
        (
            "7 days",
            "7d",
            (72, 10),
            {
                "send.signing.requested.email": "21",
                "internal.seal-document": "21",
                "internal.execute-webhook": "30",
            },
        ),
    ):
        page.get_by_role("link", name=label, exact=True).click()
        expect(page.get_by_role("link", name=label, exact=True)).to_have_attribute("aria-current", "page")
        expect(page.get_by_role("heading", name=f"Jobs finished in the last {label}")).to_be_visible()
        expect(page.locator("p.figures")).to_contain_text(f"{finished[0]} completed, {finished[1]} failed")
        chart = page.locator("svg.chart")
        box = chart.bounding_box()
        assert box is not None and box["width"] > 900 and 200 < box["height"] < 320, box
        line = page.locator("svg.chart polyline.completed").bounding_box()
        assert line is not None and line["width"] > 0.85 * box["width"], line  # across the whole window
        assert line["height"] > 0.3 * box["height"], line  # the busiest step reaches up the axis
        assert len(chart.locator(".time-axis text").all_text_contents()) >= 4
        for legend in ("Completed", "Failed", "time (UTC)"):
            expect(chart.get_by_text(legend, exact=True)).to_be_visible()
        rows = page.locator("table.history-types tbody tr")
        expect(rows).to_have_count(len(types))
        for job, completed in types.items():
            row = rows.filter(has=page.get_by_role("link", name=job, exact=True))
            expect(row.locator("td").nth(1)).to_have_text(completed)
            expect(row.locator("td").nth(6)).to_have_text("1.0 s")  # wait: due to start
            expect(row.locator("td").nth(9)).to_have_text("2.0 s")  # run: start to end
        assert f"?window={name}" in page.url
        shoot(page, f"history-{name}")
