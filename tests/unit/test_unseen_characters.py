"""Terminal escapes and bidirectional overrides never reach a reader as they are (second outside trial).

A payload, an error or a log line carrying ESC sequences, BEL or U+202E would clear an
operator's terminal, set its title, or show text reversed on the board.
"""

from __future__ import annotations

import logging

from docjobs.logging import SafeRecords, visible
from docjobs.web.board.pages import environment

TRICKS = "A\x1b[2J\x1b]0;pwned\x07 \u202eexe.txt\u202c\tnext\nline"
SHOWN = "A\\x1b[2J\\x1b]0;pwned\\x07 \\u202eexe.txt\\u202c\tnext\nline"


def test_visible_escapes_what_a_reader_would_not_see_and_keeps_tabs_and_lines() -> None:
    assert SHOWN == visible(TRICKS)
    assert "plain text, unchanged" == visible("plain text, unchanged")


def test_every_value_a_board_page_shows_is_made_visible() -> None:
    page = environment().from_string("<pre>{{ error }}</pre><p>{{ name }}</p>")
    html = page.render(error=TRICKS, name="<b>\u202ename</b>")
    assert "\x1b" not in html and "\u202e" not in html and "\x07" not in html
    assert "<pre>A\\x1b[2J" in html
    assert "&lt;b&gt;\\u202ename&lt;/b&gt;" in html  # still escaped as HTML


def test_a_traceback_in_the_process_log_carries_no_terminal_escape() -> None:
    try:
        raise RuntimeError(TRICKS)
    except RuntimeError:
        record = logging.LogRecord(
            "x", logging.ERROR, __file__, 1, "job failed", None, __import__("sys").exc_info()
        )
    SafeRecords().filter(record)
    assert record.exc_text is not None
    assert "\x1b" not in record.exc_text and "\u202e" not in record.exc_text
    assert "RuntimeError: A\\x1b[2J" in record.exc_text
