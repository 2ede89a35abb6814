"""The JSON bodies the board's API reads, each read strictly (issue 20).

A key a body does not take is refused with 400 naming it and the keys it takes,
before anything is read or done: read loosely, ``{"filter": {"jobb": "x"}}`` was no
filter at all, and a bulk delete took every job. Text fields pass the same checks as
every other field the board reads (:func:`docjobs.web.board.inputs.problem`).
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar, get_args

import pydantic
from pydantic import AfterValidator, BaseModel, ConfigDict, StrictBool
from pydantic_core import PydanticCustomError

from docjobs.web.board import forms, inputs
from docjobs.web.board.actions import ActionError


def _text(value: str) -> str:
    wrong = inputs.problem(value)
    if wrong is not None:
        raise PydanticCustomError("board_text", wrong)
    return value


#: A text field, checked as the board checks every field it reads.
Text = Annotated[str, AfterValidator(_text)]


class Body(BaseModel):
    """A JSON body the API reads: unknown keys are refused, nothing is converted loosely."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class JobActionBody(Body):
    """``POST api/jobs/<id>/<action>``: an edited payload for a retry, and the confirmation that
    delete, cancel and run-again need."""

    payload: dict[str, Any] | None = None
    confirm: StrictBool = False


class BulkFilter(Body):
    """The jobs list's filter fields; ``all`` says, on its own, that every job is meant."""

    state: Text | None = None
    queue: Text | None = None
    job: Text | None = None
    q: Text | None = None
    since: Text | None = None
    until: Text | None = None
    all: StrictBool = False

    def field(self, name: str) -> str:
        """A filter field as :func:`docjobs.web.board.forms.job_filter` reads it (``""`` if absent)."""
        value = getattr(self, name, None) if name in forms.FILTER_FIELDS else None
        return value or ""


class BulkBody(Body):
    """``POST api/bulk``: an action over the jobs among ``ids`` or matching ``filter``."""

    action: Text
    ids: list[Text] | None = None
    filter: BulkFilter | None = None
    confirm: StrictBool = False


class CleanBody(Body):
    """``POST api/clean``: delete finished jobs of a state older than some days."""

    # A number of days may come as a JSON integer, which strict mode refuses for a float.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)

    state: Text
    olderThanDays: float  # the API's name, camelCase as the reference's
    confirm: StrictBool = False


class TriggerBody(Body):
    """``POST api/trigger``: send a new ``job`` with ``payload``."""

    job: Text
    payload: dict[str, Any] = {}
    confirm: StrictBool = False


class EmptyBody(Body):
    """A POST that takes no fields (pause, resume): an empty body or ``{}``."""


B = TypeVar("B", bound=Body)

#: What a pydantic error type means, in the board's words.
_TYPE_WORDS = {
    "dict_type": "must be a JSON object",
    "model_type": "must be a JSON object",
    "list_type": "must be a list of strings",
    "string_type": "must be a string",
    "bool_type": "must be true or false",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "finite_number": "must be a number",
    "missing": "is required",
}


def read(model: type[B], data: bytes) -> B:
    """``data`` (an empty body reads as ``{}``) as ``model``.

    Raises:
        ActionError: 400 naming the first thing wrong: an unknown key (with the keys the
            body takes), a missing field, or a field of the wrong type or text.
    """
    document = forms.json_object(data, "the body") if data.strip() else {}
    try:
        return model.model_validate(document)
    except pydantic.ValidationError as exc:
        raise ActionError(400, _reason(model, exc)) from None


def _reason(model: type[Body], exc: pydantic.ValidationError) -> str:
    problems = exc.errors()
    unknown = [problem for problem in problems if problem["type"] == "extra_forbidden"]
    if unknown:
        where = unknown[0]["loc"][:-1]
        names = ", ".join(repr(_label(problem["loc"])) for problem in unknown if problem["loc"][:-1] == where)
        takes = ", ".join(_fields(model, where)) or "no keys"
        owner = f"the JSON field {_label(where)!r}" if where else "the body"
        return f"unknown key {names}: {owner} takes {takes}; nothing was done"
    first = problems[0]
    words = first["msg"] if first["type"] == "board_text" else _TYPE_WORDS.get(first["type"], first["msg"])
    return f"the JSON field {_label(first['loc'])!r} {words}"


def _label(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc)


def _fields(model: type[BaseModel], where: tuple[int | str, ...]) -> list[str]:
    """The keys the object at ``where`` in ``model``'s body takes."""
    for name in where:
        annotation = model.model_fields[str(name)].annotation
        nested = [arg for arg in (annotation, *get_args(annotation)) if _is_model(arg)]
        model = nested[0]
    return list(model.model_fields)


def _is_model(candidate: object) -> bool:
    return isinstance(candidate, type) and issubclass(candidate, BaseModel)
