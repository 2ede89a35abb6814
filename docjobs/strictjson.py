"""JSON as docjobs accepts it from outside: bounded depth, finite numbers, no NUL.

The standard library reads ``NaN`` and ``Infinity`` (which no other JSON reader
takes and PostgreSQL's ``jsonb`` refuses), and a deeply nested document makes it,
or any recursive walk after it, raise ``RecursionError``: a 500 instead of a 400.
Everything docjobs reads from a request or checks in a payload goes through
:func:`loads` or :func:`check`, so one rule decides what JSON is acceptable.
"""

from __future__ import annotations

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

    Walks without recursion, so any depth is refused cleanly.

    Raises:
        JsonRefused: Nested deeper than ``max_depth``, a NaN or infinite number, a NUL
            character in a string or key, or a value JSON has no form for.
    """
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise JsonRefused(_NUL)
        elif isinstance(item, bool) or item is None or isinstance(item, int):
            continue
        elif isinstance(item, float):
            if item != item or item in (float("inf"), float("-inf")):
                raise JsonRefused(f"{item} is not a JSON number")
        elif isinstance(item, dict | list | tuple):
            if depth > max_depth:
                raise JsonRefused(f"nested deeper than {max_depth} levels")
            if isinstance(item, dict):
                for key, child in item.items():
                    if not isinstance(key, str):
                        raise JsonRefused(f"object keys must be strings, not {type(key).__name__}")
                    if "\x00" in key:
                        raise JsonRefused(_NUL)
                    stack.append((child, depth + 1))
            else:
                stack.extend((child, depth + 1) for child in item)
        else:
            raise JsonRefused(f"{type(item).__name__} has no JSON form")
