"""When to remind a recipient next, from a document's reminder settings (the reference's rules).

Settings are ``{"sendAfter": S, "repeatEvery": R}`` where each is
``{"unit": "day" | "week" | "month", "amount": n}`` or ``{"disabled": true}``;
without settings the first reminder comes 5 days after sending, then every 2 days.
Reminders stop after 5 of them, or 30 days after the invitation.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

DEFAULT_SETTINGS: dict[str, Any] = {
    "sendAfter": {"unit": "day", "amount": 5},
    "repeatEvery": {"unit": "day", "amount": 2},
}
MAX_REMINDERS = 5
MAX_REMINDER_WINDOW = timedelta(days=30)
_UNIT_DAYS = {"day": 1, "week": 7, "month": 30}


def _interval(rule: Any) -> timedelta | None:
    if not isinstance(rule, dict) or rule.get("disabled"):
        return None
    amount = int(rule.get("amount", 0))
    days = _UNIT_DAYS.get(str(rule.get("unit")))
    if days is None or amount <= 0:
        return None
    return timedelta(days=days * amount)


def next_reminder_at(
    settings: dict[str, Any] | None, *, sent_at: datetime, reminders_sent: int, now: datetime
) -> datetime | None:
    """The next reminder's time, or ``None`` when no more reminders are due.

    Args:
        settings: The document's ``reminder_settings`` (``None`` for the defaults).
        sent_at: When the invitation went out.
        reminders_sent: How many reminders were sent already.
        now: The current time (the last reminder, or the invitation, was just sent).
    """
    rules = settings or DEFAULT_SETTINGS
    if reminders_sent >= MAX_REMINDERS:
        return None
    interval = _interval(rules.get("sendAfter") if reminders_sent == 0 else rules.get("repeatEvery"))
    if interval is None:
        return None
    candidate = now + interval
    if candidate > sent_at + MAX_REMINDER_WINDOW:
        return None
    return candidate
