"""Function concurrency for the Inngest emulator.

Inngest bounds the steps running at once per concurrency constraint. The emulator honours
a constraint without a key (per function), one whose key is a string literal (shared by
every function naming it, as docjobs' queue caps are, scope ``env``), and one whose key is
a path into the run's event (``event.data.documentId``: per value, per function).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any


def slots(
    function_id: str, concurrency: Sequence[Mapping[str, Any]], event: Mapping[str, Any]
) -> list[tuple[str, int]]:
    """The (slot, limit) pairs a call of a run of ``event`` takes, one per constraint."""
    taken = []
    for constraint in concurrency:
        key, limit = constraint.get("key"), int(constraint["limit"])
        if key is None:
            taken.append((f"fn:{function_id}", limit))
            continue
        try:
            literal = json.loads(key)
        except ValueError:  # a path into the event: a slot per value, per function
            taken.append((f"{function_id}:{key}={key_value(key, event)}", limit))
            continue
        if isinstance(literal, str):
            scope = constraint.get("scope") or "fn"
            owner = function_id if scope == "fn" else scope
            taken.append((f"{owner}:{literal}", limit))
    return taken


def key_value(expression: str | None, event: Mapping[str, Any]) -> str:
    """A key's value for ``event``: ``event.…`` paths only ('' without a key)."""
    if not expression:
        return ""
    root, *keys = expression.strip().split(".")
    if root != "event":
        raise ValueError(f"the emulator reads only event.… in flow-control keys: {expression!r}")
    current: Any = event
    for key in keys:
        current = current.get(key) if isinstance(current, Mapping) else None
    return json.dumps(current, sort_keys=True)


def full(wanted: Iterable[tuple[str, int]], calling: Iterable[Sequence[tuple[str, int]]]) -> bool:
    """Whether a call taking ``wanted`` must wait: a slot of it is at its limit among the calls made now."""
    busy: dict[str, int] = {}
    for held in calling:
        for slot, _ in held:
            busy[slot] = busy.get(slot, 0) + 1
    return any(busy.get(slot, 0) >= limit for slot, limit in wanted)
