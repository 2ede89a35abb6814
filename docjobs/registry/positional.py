"""Dramatiq's positional shape of a job's payload, and the send-time checks of callbacks and pipelines.

Payloads are named fields, but a job actor takes Dramatiq's positional shape too, for
the parameters its function lets be positional: Dramatiq's ``Callbacks`` send
``(message_data, result)`` and ``Pipelines`` append the previous result as the next
message's last positional argument. :class:`Positional` gives positional arguments
their fields' names as Python binds them; :func:`check_links` refuses, at send, a
callback or pipeline step that could not take what Dramatiq hands it.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import dramatiq

from docjobs import errors

#: What Dramatiq's ``Callbacks`` send a callback, positionally, by option.
CALLBACK_ARGUMENTS = {"on_success": "(message_data, result)", "on_failure": "(message_data, exception_data)"}


def positional_fields(fn: Callable[..., Any]) -> tuple[str, ...]:
    """The parameters of ``fn`` that positional arguments fill, in order (none if all are keyword-only)."""
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return tuple(
        name for name, parameter in inspect.signature(fn).parameters.items() if parameter.kind in positional
    )


@dataclasses.dataclass(frozen=True)
class Positional:
    """How positional arguments fill a job's payload fields.

    Attributes:
        job_id: The job its errors name.
        fields: The fields positional arguments fill, in order (none if all are keyword-only).
        aliases: Each field's name in the payload (its camelCase alias), by field.
    """

    job_id: str
    fields: tuple[str, ...]
    aliases: Mapping[str, str]

    def bind(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Mapping[str, Any]:
        """The payload with positional arguments given their fields' names, as Python binds them.

        Raises:
            errors.PayloadError: The function takes no (or fewer) positional arguments,
                or a field is given both by position and by name.
        """
        if not args or not isinstance(kwargs, Mapping):
            return kwargs  # a payload that is not an object is refused by the payload model
        if not self.fields:
            raise errors.PayloadError(
                f"{self.job_id}: pass the payload as keyword arguments, not positional ones",
                job_id=self.job_id,
            )
        if len(args) > len(self.fields):
            raise errors.PayloadError(
                f"{self.job_id}: takes at most {len(self.fields)} positional "
                f"argument{'s' if len(self.fields) > 1 else ''}, not {len(args)}",
                job_id=self.job_id,
            )
        bound = dict(kwargs)
        for name, value in zip(self.fields, args, strict=False):
            alias = self.aliases[name]
            if name in bound or alias in bound:
                raise errors.PayloadError(
                    f"{self.job_id}: {alias}: given both by position and by name",
                    job_id=self.job_id,
                    field=alias,
                )
            bound[name] = value
        return bound

    def misfit(self, count: int, kwargs: Mapping[str, Any]) -> str | None:
        """Why ``count`` positional arguments cannot join ``kwargs`` in a call, or None if they can.

        The reason reads after "it cannot take them: ".
        """
        if not self.fields:
            return "its parameters are keyword-only"
        if count > len(self.fields):
            taken = len(self.fields)
            return f"it takes at most {taken} positional argument{'s' if taken > 1 else ''}"
        for name in self.fields[:count]:
            if name in kwargs or self.aliases[name] in kwargs:
                return f"{self.aliases[name]} is given by name already"
        return None


#: The options that link a message to another actor: its callbacks, its pipeline's next step.
LINK_OPTIONS = frozenset((*CALLBACK_ARGUMENTS, "pipe_target"))


class Linkable(Protocol):
    """A job actor as :func:`check_links` sees it (``JobActor``)."""

    @property
    def actor_name(self) -> str: ...

    def positional_misfit(self, count: int, kwargs: Mapping[str, Any]) -> str | None: ...


def check_links(
    broker: dramatiq.Broker, message: dramatiq.Message[Any], job_actors: Mapping[str, Linkable]
) -> None:
    """Refuse, at send, a callback or pipeline step that cannot take what Dramatiq hands it.

    Dramatiq's ``Callbacks`` send a callback ``(message_data, result)`` and its
    ``Pipelines`` append the previous result to the next step's arguments, both
    positionally and from a worker's after-hook, where a refusal is only logged: the
    callback is never sent, the pipeline stops, ``join`` returns. So a job actor that
    could not take them is refused when the message naming it is sent (a pipeline's
    when it runs), and nothing is enqueued. Plain Dramatiq actors are not checked.

    Args:
        broker: The broker sending ``message`` (its actors' options count).
        message: The message being sent.
        job_actors: The declared job actors by name, the only ones checked.

    Raises:
        errors.PayloadError: Naming the job, the callback or step, and why.
    """
    sender = broker.actors.get(message.actor_name)
    sender_options: Mapping[str, Any] = sender.options if sender is not None else {}
    if LINK_OPTIONS.isdisjoint(message.options) and LINK_OPTIONS.isdisjoint(sender_options):
        return  # most messages: nothing linked, nothing to check (this runs on every send)
    for option, arguments in CALLBACK_ARGUMENTS.items():
        name = message.options.get(option) or sender_options.get(option)
        if isinstance(name, dramatiq.Actor):
            name = name.actor_name
        callback = job_actors.get(name) if isinstance(name, str) else None
        problem = callback.positional_misfit(2, {}) if callback is not None else None
        if problem is not None:
            raise errors.PayloadError(
                f"{message.actor_name}: {option}={name} cannot be its callback: {problem}; "
                f"a callback receives {arguments} positionally",
                job_id=message.actor_name,
            )
    # Each step's pipe_target holds the next, as Pipelines will send it; a step takes the
    # previous result unless its message or the previous step's actor says pipe_ignore.
    step, previous_options, number = message.options.get("pipe_target"), sender_options, 2
    while isinstance(step, Mapping):
        options: Mapping[str, Any] = step.get("options") or {}
        target = job_actors.get(str(step.get("actor_name")))
        if not (options.get("pipe_ignore") or previous_options.get("pipe_ignore")) and target is not None:
            problem = target.positional_misfit(len(step.get("args") or ()) + 1, step.get("kwargs") or {})
            if problem is not None:
                raise errors.PayloadError(
                    f"{message.actor_name}: pipeline step {number}, {target.actor_name}, would receive "
                    f"the previous result as a positional argument, but {problem}: build its message "
                    "with pipe_ignore=True to run it without the result",
                    job_id=message.actor_name,
                )
        next_actor = broker.actors.get(str(step.get("actor_name")))
        previous_options = next_actor.options if next_actor is not None else {}
        step, number = options.get("pipe_target"), number + 1
