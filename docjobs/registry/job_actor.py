"""The job actor: a Dramatiq actor named by job id, whose payload model is checked at send.

A message is checked when built, and again when sent if it still lacks a field (a
pipeline step, waiting for the previous result): see :meth:`JobActor.message_with_options`
and :meth:`JobActor.check_message`. A job actor binds to a broker when the runtime has
one (``declarations.bind_all``), not when it is declared.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, ParamSpec, TypeVar

import dramatiq
import pydantic

from docjobs import context, errors, ids, strictjson
from docjobs.flow import limits
from docjobs.registry import positional
from docjobs.registry.payloads import payload_error, payload_model_for  # validate_many has `payloads`

P = ParamSpec("P")
R = TypeVar("R")

#: The message option naming the slot a scheduled firing is for (periodiq's name).
SLOT_OPTION = "scheduled_at"


class JobActor(dramatiq.Actor[P, R]):
    """A Dramatiq actor whose name is a job id and whose payload is validated at send.

    Attributes:
        payload_model: The pydantic model of the payload, camelCase aliases.
        display_name: The job's human name ("Seal Document").
        version: The job definition's version.
        firing_payload: What a scheduled firing sent without a payload runs with
            (periodiq sends none): its schedule's, set by the scheduler's wiring.
        positional: How positional arguments fill the payload's fields (Dramatiq's shape).
        positional_fields: The fields positional arguments fill, in order.
        flow: Its flow control (concurrency, throttle, rate limit, debounce), keys as aliases.
        bound_broker: The broker every job actor is bound to, set by
            ``declarations.bind_all``; None until the runtime is built.
    """

    bound_broker: ClassVar[dramatiq.Broker | None] = None

    def __init__(
        self,
        fn: Callable[P, R],
        *,
        actor_name: str,
        queue_name: str,
        priority: int,
        options: dict[str, Any],
        display_name: str,
        version: str,
        flow: dict[str, Any] | None = None,
    ) -> None:
        # Dramatiq's Actor.__init__ binds to a broker at once; a JobActor binds when
        # the runtime has one (see declarations.bind_all), so its attributes are set here instead.
        if inspect.iscoroutinefunction(fn):
            raise TypeError(f"{actor_name}: async functions are not supported as job actors")
        self.logger = dramatiq.logging.get_logger(fn.__module__ or "_", actor_name)
        self.fn = fn
        self.actor_name = actor_name
        self.queue_name = queue_name
        self.priority = priority
        self.options = options
        # The options it was declared with; middleware may add runtime ones to
        # `options` (the periodiq wiring adds `periodic`).
        self.declared_options = frozenset(options)
        self.display_name = display_name
        self.version = version
        self.firing_payload: dict[str, Any] = {}
        self.payload_model = payload_model_for(fn, actor_name)
        self._aliases = {name: field.alias or name for name, field in self.payload_model.model_fields.items()}
        self.flow = limits.declare(actor_name, self._aliases, **(flow or {})) if flow else limits.NO_FLOW
        # Dramatiq's positional shape: which fields positional arguments fill, in order,
        # and the fields a message must name before it can run (by name or alias).
        self.positional = positional.Positional(actor_name, positional.positional_fields(fn), self._aliases)
        self.positional_fields = self.positional.fields
        self._required = [
            (name, self._aliases[name])
            for name, field in self.payload_model.model_fields.items()
            if field.is_required()
        ]
        self._required_aliases = frozenset(alias for _, alias in self._required)
        # The list's own config decides how NaN is written: keep it, for the send-time check.
        self._many = pydantic.TypeAdapter(
            list[self.payload_model],  # type: ignore[name-defined]
            config=pydantic.ConfigDict(ser_json_inf_nan="constants", defer_build=True),
        )

    @property
    def broker(self) -> dramatiq.Broker:  # type: ignore[override]
        """The runtime's broker (configured from the environment on first use)."""
        bound = JobActor.bound_broker
        return bound if bound is not None else context.current().broker

    def validate(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """Check a payload and return its canonical JSON form (camelCase, defaults filled).

        Raises:
            errors.PayloadError: Naming the first offending field.
        """
        model = self._parse(payload)
        dumped: dict[str, Any] = self._dump(lambda: model.model_dump(mode="json", by_alias=True))
        return dumped

    def validate_many(self, payloads: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Check many payloads in one pass (see :meth:`validate`).

        Raises:
            errors.PayloadError: Naming the index of the first bad payload and its field.
        """
        try:
            models = self._many.validate_python(payloads)
        except pydantic.ValidationError as exc:
            raise payload_error(self.actor_name, exc, indexed=True) from None
        dumped: list[dict[str, Any]] = self._dump(
            lambda: self._many.dump_python(models, mode="json", by_alias=True)
        )
        return dumped

    def _dump(self, dump: Callable[[], Any]) -> Any:
        """Run a pydantic dump, whose only failure on a valid payload is nesting beyond its limit."""
        try:
            return dump()
        except (ValueError, RecursionError) as exc:
            # Past pydantic's depth limit, so far past docjobs' own (the send-time check's).
            reason = f"nested deeper than {strictjson.MAX_DEPTH} levels" if "depth" in str(exc) else str(exc)
            raise errors.PayloadError(
                f"{self.actor_name}: the payload cannot be sent: {reason}", job_id=self.actor_name
            ) from None

    def message_with_options(
        self, *, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None, **options: Any
    ) -> dramatiq.Message[R]:
        """Build a message; its payload is checked now, and again at send if a field is missing.

        A complete payload is built in its canonical form: named camelCase fields,
        defaults filled, positional arguments given their names. A payload lacking
        only required fields is kept as given, for a pipeline to complete: Dramatiq
        appends the previous step's result as a positional argument.

        Raises:
            errors.PayloadError: A field is wrong, or the arguments do not fit the
                function's parameters; naming the first offending field.
        """
        if kwargs is None and not args and options.get(SLOT_OPTION) is not None:
            kwargs = self.firing_payload
        for name in ("on_failure", "on_success"):  # as Dramatiq does: callbacks travel by name
            callback = options.get(name)
            if isinstance(callback, dramatiq.Actor):
                options[name] = callback.actor_name
        complete = self._canonical_unless_missing(self.positional.bind(args, kwargs or {}))
        if complete is not None:
            args, payload = (), complete  # a new dict of its own: no copy
        else:
            payload = dict(kwargs or {})  # missing fields: checked again when sent (check_message)
        return dramatiq.Message(
            queue_name=self.queue_name,
            actor_name=self.actor_name,
            args=args,
            kwargs=payload,
            options=options,
            message_id=ids.new_job_id(),
        )

    def _canonical_unless_missing(self, payload: Mapping[str, Any]) -> dict[str, Any] | None:
        """The canonical payload, or None if it only lacks required fields.

        Raises:
            errors.PayloadError: Naming the first field that is wrong (not missing).
        """
        if not isinstance(payload, Mapping):
            self._parse(payload)  # refuses it
        # The model's own validator and serializer, called straight: what model_validate and
        # model_dump call after checks of their own (a third of a send's registry time, issue 21).
        model = self.payload_model
        try:
            validated = model.__pydantic_validator__.validate_python(payload)
        except pydantic.ValidationError as exc:
            wrong = [problem for problem in exc.errors() if problem["type"] != "missing"]
            if not wrong:
                return None
            raise payload_error(self.actor_name, exc, problems=wrong) from None
        serializer = model.__pydantic_serializer__
        dumped: dict[str, Any] = self._dump(
            lambda: serializer.to_python(validated, mode="json", by_alias=True)
        )
        return dumped

    def check_message(self, message: dramatiq.Message[Any]) -> None:
        """Check, at send, a message's payload as the actor will receive it.

        A message built complete was checked then; one with positional arguments
        or a missing field (a pipeline step, its previous result appended) is
        checked in full here, so a bad payload is refused before it is enqueued.

        Raises:
            errors.PayloadError: Naming the first offending field.
        """
        kwargs = message.kwargs
        if not message.args and isinstance(kwargs, Mapping) and self._names_every_required(kwargs):
            return
        self._parse(self.positional.bind(message.args, kwargs))

    def _names_every_required(self, kwargs: Mapping[str, Any]) -> bool:
        if self._required_aliases <= kwargs.keys():  # a canonical payload: one set operation
            return True
        return all(name in kwargs or alias in kwargs for name, alias in self._required)

    def positional_misfit(self, count: int, kwargs: Mapping[str, Any]) -> str | None:
        """Why ``count`` positional arguments cannot join ``kwargs`` in a call, or None if they can.

        The reason reads after "it cannot take them: " (Dramatiq's callbacks and
        pipelines hand an actor positional arguments; see ``positional.check_links``).
        """
        return self.positional.misfit(count, kwargs)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        model = self._parse(self.positional.bind(args, kwargs))
        start = time.perf_counter()
        try:
            # The validated fields, by name (unknown keys were dropped): read once, not field by field.
            return self.fn(**model.__dict__)  # type: ignore[call-arg]
        finally:
            self.logger.debug("Completed after %.02fms.", (time.perf_counter() - start) * 1000)

    def _parse(self, payload: Mapping[str, Any]) -> pydantic.BaseModel:
        if not isinstance(payload, Mapping):
            raise errors.PayloadError(
                f"{self.actor_name}: the payload must be a JSON object, not {type(payload).__name__}",
                job_id=self.actor_name,
            )
        try:
            return self.payload_model.model_validate(payload)
        except pydantic.ValidationError as exc:
            raise payload_error(self.actor_name, exc) from None

    def __repr__(self) -> str:
        return f"JobActor({self.actor_name!r}, queue_name={self.queue_name!r})"
