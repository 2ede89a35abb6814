"""JSON as docjobs accepts it from outside: bounded depth, finite numbers, no NUL.

The standard library reads ``NaN`` and ``Infinity`` (which no other JSON reader
takes and PostgreSQL's ``jsonb`` refuses), and a deeply nested document makes it,
or any recursive walk after it, raise ``RecursionError``: a 500 instead of a 400.
Everything docjobs reads from a request or checks in a payload goes through
:func:`loads` or :func:`check`, so one rule decides what JSON is acceptable.
"""

from __future__ import annotations

import math
from typing import Any

import orjson

#: The deepest nesting accepted; real payloads and Inngest calls stay far below it.
MAX_DEPTH = 64
_NUL = "a string holds a NUL character, which PostgreSQL cannot store"


class JsonRefused(ValueError):
    """The JSON document is not acceptable."""


def loads(data: bytes | str, *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse ``data``, refusing what :func:`check` refuses.

    Raises:
        JsonRefused: Not JSON, too deep, a non-finite number, or a NUL in a string.
    """
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        # orjson names the position; its own recursion limit (1024) lands here too.
        raise JsonRefused(f"not valid JSON: {exc}") from None
    check(value, max_depth=max_depth)
    return value


def check(value: Any, *, max_depth: int = MAX_DEPTH) -> None:
    """Refuse a value that cannot round-trip through JSON and PostgreSQL unchanged.

    Walks without recursion, so any depth is refused cleanly. Every payload sent
    passes here, so scalars are checked where they are met rather than stacked.

    Raises:
        JsonRefused: Nested deeper than ``max_depth``, a NaN or infinite number, a NUL
            character in a string or key, or a value JSON has no form for.
    """
    containers: list[tuple[Any, int]] = []
    _scalar_or_stack(value, 1, containers)
    while containers:
        item, depth = containers.pop()
        if depth > max_depth:
            raise JsonRefused(f"nested deeper than {max_depth} levels")
        if isinstance(item, dict):
            for key, child in item.items():
                if type(key) is not str:
                    raise JsonRefused(f"object keys must be strings, not {type(key).__name__}")
                if "\x00" in key:
                    raise JsonRefused(_NUL)
                _scalar_or_stack(child, depth + 1, containers)
        else:
            for child in item:
                _scalar_or_stack(child, depth + 1, containers)


def plain(value: Any) -> bool:
    """Whether ``value`` holds only JSON's own types: exactly ``str``, ``int``, finite ``float``,
    ``bool``, ``None``, and ``dict`` (string keys), ``list`` or ``tuple`` of them.

    Such a value is written alike by every JSON encoder (the standard library, orjson),
    up to spacing and escapes, so a faster one may stand in for another. Subclasses
    (enums), NaN and anything else answer False. Never raises; walks without recursion.
    """
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is str or kind is int or kind is bool or item is None:
            continue
        if kind is float:
            if not math.isfinite(item):
                return False
        elif kind is dict:
            for key in item:
                if type(key) is not str:
                    return False
            stack.extend(item.values())
        elif kind is list or kind is tuple:
            stack.extend(item)
        else:
            return False
    return True


def _scalar_or_stack(item: Any, depth: int, containers: list[tuple[Any, int]]) -> None:
    """Check a scalar at once; put a container on the stack."""
    kind = type(item)
    if kind is str:
        if "\x00" in item:
            raise JsonRefused(_NUL)
    elif kind is int or kind is bool or item is None:
        return
    elif kind is float:
        if not math.isfinite(item):
            raise JsonRefused(f"{item} is not a JSON number")
    elif kind is dict or kind is list or kind is tuple:
        containers.append((item, depth))
    elif isinstance(item, str | int | float | dict | list | tuple):  # subclasses: the slow way
        _scalar_or_stack(_base_value(item), depth, containers)
    else:
        raise JsonRefused(f"{kind.__name__} has no JSON form")


def _base_value(item: Any) -> Any:
    """A subclass's value as its JSON base type (an ``IntEnum`` as its ``int``)."""
    for base in (bool, int, float, str, dict, list, tuple):
        if isinstance(item, base):
            convert: Any = base
            return convert(item)
    raise AssertionError(item)  # pragma: no cover - the caller checked the bases
