"""JSON documents for statements that take many rows as one parameter.

One ``jsonb`` parameter, not an array per column: psycopg adapts arrays element by
element, which showed on the enqueue, ack and history paths (issue 21).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import orjson


def json_document(value: Any) -> bytes:
    """``value`` as JSON, its datetimes in ISO 8601.

    orjson is several times faster; what it refuses (a lone surrogate in an error's
    text) the standard library writes, escaped, as before.
    """
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        return json.dumps(value, default=_iso).encode()


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot write a {type(value).__name__} as JSON")
