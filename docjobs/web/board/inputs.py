"""The one place the board reads text from a request: path, query and form fields (JSON bodies:
:mod:`docjobs.web.board.api_bodies`, whose text fields pass :func:`problem`).

Every value passes :func:`checked` before the board uses it: a control character
(NUL above all, which PostgreSQL cannot store and answers with an error), a lone
surrogate (which cannot be encoded to send) or an over-long value is refused with
400 naming the field, before anything is read from or written to the database.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request

from docjobs.web.board.actions import ActionError

#: The longest value a field takes unless it says otherwise (ids, queue names, searches).
MAX_TEXT_CHARS = 1024
#: C0 and C1 controls, DEL and lone surrogates.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
#: The same, but tabs and line breaks, which a multi-line field (a JSON payload) may hold.
_CONTROL_IN_LINES = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


class BadInput(ActionError):
    """A request field is not text the board takes (400)."""

    def __init__(self, reason: str) -> None:
        super().__init__(400, reason)


def checked(value: str, what: str, *, max_chars: int = MAX_TEXT_CHARS, lines: bool = False) -> str:
    """``value``, if the board may use it.

    Args:
        value: The text as the request carried it.
        what: The field, as the error names it (``the query parameter 'q'``).
        max_chars: The longest value accepted.
        lines: Tabs and line breaks are allowed (a multi-line form field).

    Raises:
        BadInput: A control character, a lone surrogate, or more than ``max_chars`` characters.
    """
    wrong = problem(value, max_chars=max_chars, lines=lines)
    if wrong is not None:
        raise BadInput(f"{what} {wrong}")
    return value


def problem(value: str, *, max_chars: int = MAX_TEXT_CHARS, lines: bool = False) -> str | None:
    """What is wrong with ``value`` as :func:`checked` says it (``is longer than ...``); ``None``: nothing."""
    if len(value) > max_chars:
        return f"is longer than {max_chars} characters"
    found = (_CONTROL_IN_LINES if lines else _CONTROL).search(value)
    if found is not None:
        return f"holds a control character (U+{ord(found[0]):04X}), which it cannot"
    return None


def query(request: Request, name: str, **limits: Any) -> str:
    """The query parameter ``name`` (the last one given), ``""`` when absent."""
    return checked(request.query_params.get(name, ""), f"the query parameter {name!r}", **limits)


def path(request: Request, name: str, **limits: Any) -> str:
    """The path parameter ``name`` (a job id, a queue, an action)."""
    return checked(str(request.path_params[name]), f"the {name.replace('_', ' ')} in the path", **limits)


def form_field(form: FormData, name: str, **limits: Any) -> str:
    """The form field ``name``, ``""`` when absent."""
    value = form.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BadInput(f"the form field {name!r} must be text, not a file")
    return checked(value, f"the form field {name!r}", **limits)


def form_list(form: FormData, name: str, **limits: Any) -> list[str]:
    """Every value of the form field ``name`` (checkboxes)."""
    values = form.getlist(name)
    if not all(isinstance(value, str) for value in values):
        raise BadInput(f"the form field {name!r} must be text, not a file")
    return [checked(str(value), f"the form field {name!r}", **limits) for value in values]
