"""A job's payload model, built from its function's parameters, and the errors it raises.

The model takes the function's keyword parameters as fields, with camelCase aliases
(``document_id`` is ``documentId``), so ``seal_document.send(document_id=73)`` and
``jobs.trigger("internal.seal-document", {"documentId": 73})`` name the same field.
Unknown keys are dropped. A payload pydantic refuses becomes one :class:`PayloadError`
naming the first offending field (:func:`payload_error`).
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import Any

import pydantic
from pydantic.alias_generators import to_camel
from pydantic_core import ErrorDetails

from docjobs import errors

#: How much of a refused value an error message quotes, in characters.
QUOTED_VALUE_CHARS = 60


def payload_model_for(fn: Callable[..., Any], job_id: str) -> type[pydantic.BaseModel]:
    """Build the payload model of a function from its keyword parameters.

    Raises:
        TypeError: The function takes ``*args`` or ``**kwargs``, whose fields cannot be named.
    """
    # With extras: an ``Annotated`` parameter keeps its validators and constraints.
    hints = typing.get_type_hints(fn, include_extras=True)
    fields: dict[str, Any] = {}
    for name, parameter in inspect.signature(fn).parameters.items():
        if parameter.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            raise TypeError(f"{job_id}: a job actor's parameters must be named (no *args or **kwargs)")
        default = ... if parameter.default is inspect.Parameter.empty else parameter.default
        fields[name] = (hints.get(name, Any), default)
    model_name = "".join(part.capitalize() for part in fn.__name__.split("_")) + "Payload"
    # NaN and infinities are refused in typed fields and kept as such in free-form ones,
    # where the send-time check refuses them: pydantic would otherwise write them as null.
    config = pydantic.ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
        allow_inf_nan=False,
        ser_json_inf_nan="constants",
        # Built on the first send or run of the job, not when it is declared: a process
        # declares every job but runs a few (issue 21, worker memory).
        defer_build=True,
    )
    model: type[pydantic.BaseModel] = pydantic.create_model(model_name, __config__=config, **fields)
    return model


def payload_error(
    job_id: str,
    exc: pydantic.ValidationError,
    *,
    indexed: bool = False,
    problems: list[ErrorDetails] | None = None,
) -> errors.PayloadError:
    """One readable :class:`PayloadError` from pydantic's errors: the first field, and a count.

    Args:
        indexed: The payloads were a list; the first location part is the index.
        problems: The errors to report, if not all of ``exc``'s.
    """
    if problems is None:
        problems = exc.errors()
    first = problems[0]
    location = list(first["loc"])
    prefix = ""
    if indexed and location:
        prefix = f"payload {location.pop(0)}: "
    field = ".".join(str(part) for part in location) or None
    where = prefix + (f"{field}: " if field else "")
    more = (
        f" (and {len(problems) - 1} more problem{'s' if len(problems) > 2 else ''})"
        if len(problems) > 1
        else ""
    )
    got = "" if first["type"] == "missing" else f" (got {_short(first.get('input'))})"
    return errors.PayloadError(f"{job_id}: {where}{first['msg']}{got}{more}", job_id=job_id, field=field)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= QUOTED_VALUE_CHARS else text[: QUOTED_VALUE_CHARS - 3] + "..."
