"""Function concurrency for the Inngest emulator: the limits whose key is a constant.

Inngest bounds the steps running at once per concurrency constraint. The emulator honours
a constraint without a key (per function) and one whose key is a string literal (shared by
every function naming it, as docjobs' queue caps are, scope ``env``); a key computed from
the event is not evaluated, so it does not limit anything here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any


def slots(function_id: str, concurrency: Sequence[Mapping[str, Any]]) -> list[tuple[str, int]]:
    """The (slot, limit) pairs a function's calls take: its id, or the constant key, per constraint."""
    taken = []
    for constraint in concurrency:
        key = constraint.get("key")
        if key is None:
            taken.append((f"fn:{function_id}", int(constraint["limit"])))
            continue
        try:
            literal = json.loads(key)
        except ValueError:
            continue  # an expression over the event: not evaluated here
        if isinstance(literal, str):
            scope = constraint.get("scope") or "fn"
            owner = function_id if scope == "fn" else scope
            taken.append((f"{owner}:{literal}", int(constraint["limit"])))
    return taken


def full(wanted: Iterable[tuple[str, int]], calling: Iterable[Sequence[tuple[str, int]]]) -> bool:
    """Whether a call taking ``wanted`` must wait: a slot of it is at its limit among the calls made now."""
    busy: dict[str, int] = {}
    for held in calling:
        for slot, _ in held:
            busy[slot] = busy.get(slot, 0) + 1
    return any(busy.get(slot, 0) >= limit for slot, limit in wanted)
