"""Reading a board request's body: forms, JSON objects, the jobs list's filter, an age in days,
the overview's chart window.

Each reader refuses what it cannot take with an :class:`ActionError` naming what is
wrong (a 400, 413 or 422), before anything is read from or written to the database.
Single fields pass :mod:`docjobs.web.board.inputs`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request

from docjobs import strictjson
from docjobs.db.board import FILTER_STATES, STATE_ALIASES, JobFilter
from docjobs.web import bodies
from docjobs.web.board import charts
from docjobs.web.board.actions import ActionError

#: The jobs list's query fields.
FILTER_FIELDS = ("state", "queue", "job", "q", "since", "until")
#: The job statuses (``background_job.status``) the filter takes as well as the board's states.
STATUSES = ("PENDING", "PROCESSING", "COMPLETED", "FAILED", "CANCELLED")
#: The biggest form or JSON body the board reads.
MAX_BODY_BYTES = 256 * 1024


class BadFilter(ActionError):
    """A query field of a list or chart is not one the board takes (400; the page says "Bad filter")."""

    title = "Bad filter"

    def __init__(self, reason: str) -> None:
        super().__init__(400, reason)


def job_filter(field: Callable[[str], str]) -> tuple[JobFilter, str | None]:
    """The jobs list's filter and cursor, each read with ``field`` (checked text, ``""`` if absent).

    A state is a board state or a status name (``FAILED``, ``PROCESSING``), in any case.

    Raises:
        BadFilter: An unknown state, a moment that is not a date and time, or ``since`` not
            before ``until``.
    """
    given = field("state")
    state = STATE_ALIASES.get(given.lower(), given.lower()) or None
    if state is not None and state not in FILTER_STATES:
        raise BadFilter(
            f"state must be one of {', '.join(FILTER_STATES)} (or a status name: {', '.join(STATUSES)}; "
            f"any case), not {given[:40]!r}"
        )
    since, until = _moment(field, "since"), _moment(field, "until")
    if since is not None and until is not None and since >= until:
        raise BadFilter(
            f"since ({since:%Y-%m-%d %H:%M} UTC) must be before until ({until:%Y-%m-%d %H:%M} UTC)"
        )
    return (
        JobFilter(
            state=state,
            queue=field("queue") or None,
            actor=field("job") or None,
            search=field("q") or None,
            since=since,
            until=until,
        ),
        field("before") or None,
    )


def _moment(field: Callable[[str], str], name: str) -> datetime | None:
    text = field(name)
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise BadFilter(
            f"{name} must be a date and time such as 2026-11-29T10:00, not {text[:40]!r}"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def body(request: Request) -> bytes:
    """The request's body, read within ``MAX_BODY_BYTES`` (chunked bodies too).

    Raises:
        ActionError: 413 for a body over ``MAX_BODY_BYTES``.
    """
    data = await bodies.read_within(request, MAX_BODY_BYTES)
    if data is None:
        raise ActionError(413, f"the body is over {MAX_BODY_BYTES} bytes")
    return data


async def form(request: Request, max_fields: int = 20) -> FormData:
    """The form, read within the board's own cap (chunked bodies too).

    Raises:
        ActionError: 413 for a form over ``MAX_BODY_BYTES``, 400 for too many fields or
            a malformed body.
    """
    await body(request)  # Starlette parses the form from the body it now holds
    try:
        return await request.form(max_files=0, max_fields=max_fields)
    except HTTPException as exc:  # too many fields, a malformed body
        raise ActionError(400, f"the form cannot be read: {exc.detail}") from None


def days(text: str) -> float:
    """An age in days, as the clean-up takes it.

    Raises:
        ActionError: 400 for what is not a number from 0 up to 100000.
    """
    try:
        value = float(text)
    except ValueError:
        raise ActionError(400, f"the age must be a number of days, not {text!r}") from None
    if not 0 <= value < 100_000:
        raise ActionError(400, "the age must be between 0 and 100000 days")
    return value


def json_object(data: bytes | str, what: str) -> dict[str, Any]:
    """A JSON object read by docjobs' one rule for outside JSON (no NUL, bounded depth, finite numbers).

    Raises:
        ActionError: 400 for what is not acceptable JSON, 422 for JSON that is not an object.
    """
    try:
        value = strictjson.loads(data)
    except strictjson.JsonRefused as exc:
        raise ActionError(400, f"{what} is not acceptable JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ActionError(422, f"{what} must be a JSON object")
    return value


def chart_window(text: str) -> charts.Window:
    """The overview's chart window named by ``?window=`` (``""``: the default, one hour).

    Raises:
        BadFilter: A name that is not one of ``charts.WINDOWS``.
    """
    if not text:
        return charts.DEFAULT_WINDOW
    window = charts.WINDOWS.get(text)
    if window is None:
        raise BadFilter(f"window must be one of {', '.join(charts.WINDOWS)}, not {text[:40]!r}")
    return window
