"""Job actors: Dramatiq actors named by job id, with a payload model checked at send.

The payload model is built from the actor function's keyword parameters, so
``seal_document.send(document_id=73)`` is type-checked against the function and
validated at run time, and ``jobs.trigger("internal.seal-document", {"documentId": 73})``
accepts the camelCase payload of the reference service. Unknown keys are dropped.

Actors are kept in a registry and bound to whichever broker the runtime holds, so
importing a module of actors reads no settings and opens no connection. Plain
``@dramatiq.actor`` actors declared on Dramatiq's global broker before the runtime
is built (see ``globalbroker``) are kept here too, and bound with the others.
"""

from __future__ import annotations

import inspect
import threading
import time
import typing
from collections.abc import Callable, Mapping
from typing import Any, ParamSpec, TypeVar

import dramatiq
import pydantic
from pydantic.alias_generators import to_camel

from docjobs import context, errors, ids, strictjson

P = ParamSpec("P")
R = TypeVar("R")

DEFAULT_QUEUE = "default"
DEFAULT_VERSION = "1.0.0"
#: The message option naming the slot a scheduled firing is for (periodiq's name).
SLOT_OPTION = "scheduled_at"

_registry: dict[str, JobActor[Any, Any]] = {}
_plain: dict[str, dramatiq.Actor[Any, Any]] = {}
_registry_lock = threading.RLock()
_broker: dramatiq.Broker | None = None


class JobActor(dramatiq.Actor[P, R]):
    """A Dramatiq actor whose name is a job id and whose payload is validated at send.

    Attributes:
        payload_model: The pydantic model of the payload, camelCase aliases.
        display_name: The job's human name ("Seal Document").
        version: The job definition's version.
        firing_payload: What a scheduled firing sent without a payload runs with
            (periodiq sends none): its schedule's, set by the scheduler's wiring.
    """

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
    ) -> None:
        # Dramatiq's Actor.__init__ binds to a broker at once; a JobActor binds when
        # the runtime has one (see bind_all), so its attributes are set here instead.
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
        # The list's own config decides how NaN is written: keep it, for the send-time check.
        self._many = pydantic.TypeAdapter(
            list[self.payload_model],  # type: ignore[name-defined]
            config=pydantic.ConfigDict(ser_json_inf_nan="constants"),
        )

    @property
    def broker(self) -> dramatiq.Broker:  # type: ignore[override]
        """The runtime's broker (configured from the environment on first use)."""
        return _broker if _broker is not None else context.current().broker

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
        self._refuse_positional(args)
        if kwargs is None and options.get(SLOT_OPTION) is not None:
            kwargs = self.firing_payload
        for name in ("on_failure", "on_success"):  # as Dramatiq does: callbacks travel by name
            callback = options.get(name)
            if isinstance(callback, dramatiq.Actor):
                options[name] = callback.actor_name
        return dramatiq.Message(
            queue_name=self.queue_name,
            actor_name=self.actor_name,
            args=(),
            kwargs=self.validate(kwargs or {}),
            options=options,
            message_id=ids.new_job_id(),
        )

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        self._refuse_positional(args)
        model = self._parse(kwargs)
        values = {name: getattr(model, name) for name in type(model).model_fields}
        start = time.perf_counter()
        try:
            return self.fn(**values)  # type: ignore[call-arg]
        finally:
            self.logger.debug("Completed after %.02fms.", (time.perf_counter() - start) * 1000)

    def _refuse_positional(self, args: tuple[Any, ...]) -> None:
        if args:
            raise errors.PayloadError(
                f"{self.actor_name}: pass the payload as keyword arguments, not positional ones",
                job_id=self.actor_name,
            )

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


def payload_model_for(fn: Callable[..., Any], job_id: str) -> type[pydantic.BaseModel]:
    """Build the payload model of a function from its keyword parameters.

    Raises:
        TypeError: The function takes ``*args`` or ``**kwargs``, whose fields cannot be named.
    """
    hints = typing.get_type_hints(fn)
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
    )
    model: type[pydantic.BaseModel] = pydantic.create_model(model_name, __config__=config, **fields)
    return model


def payload_error(
    job_id: str, exc: pydantic.ValidationError, *, indexed: bool = False
) -> errors.PayloadError:
    """One readable :class:`PayloadError` from pydantic's errors: the first field, and a count.

    Args:
        indexed: The payloads were a list; the first location part is the index.
    """
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
    return text if len(text) <= 60 else text[:57] + "..."


def actor(
    job_id: str,
    *,
    display_name: str | None = None,
    version: str = DEFAULT_VERSION,
    queue_name: str = DEFAULT_QUEUE,
    priority: int = 0,
    **options: Any,
) -> Callable[[Callable[P, R]], JobActor[P, R]]:
    """Declare a job actor.

    Args:
        job_id: The actor name, as in the reference service (``internal.seal-document``).
        display_name: The human name; defaults to the job id.
        version: The definition's version, stored with each job.
        queue_name: The queue its jobs go to.
        priority: Lower runs first among jobs of the same queue.
        **options: Dramatiq actor options (``max_retries``, ``time_limit``, ...).

    Returns:
        A decorator turning a function with keyword parameters into a :class:`JobActor`.

    Raises:
        ValueError: The job id is already taken.

    Example::

        @docjobs.actor("demo.greet", display_name="Greet")
        def greet(*, name: str, times: int = 1) -> None: ...

        greet.send(name="Ada")
    """

    def decorate(fn: Callable[P, R]) -> JobActor[P, R]:
        job_actor: JobActor[P, R] = JobActor(
            fn,
            actor_name=job_id,
            queue_name=queue_name,
            priority=priority,
            options=options,
            display_name=display_name or job_id,
            version=version,
        )
        with _registry_lock:
            if job_id in _registry or job_id in _plain:
                raise ValueError(f"A job actor named {job_id!r} is already declared.")
            _registry[job_id] = job_actor
            if _broker is not None:
                _declare(_broker, job_actor)
        return job_actor

    return decorate


def _declare(broker: dramatiq.Broker, actor: dramatiq.Actor[Any, Any]) -> None:
    options = actor.declared_options if isinstance(actor, JobActor) else frozenset(actor.options)
    unknown = options - broker.actor_options
    if unknown:
        raise ValueError(f"{actor.actor_name}: unknown actor options {', '.join(sorted(unknown))}")
    broker.declare_actor(actor)


def declare_plain(actor: dramatiq.Actor[Any, Any]) -> None:
    """Keep a plain Dramatiq actor declared on docjobs' global broker, and bind it to the runtime's.

    Raises:
        ValueError: Its name is taken.
    """
    with _registry_lock:
        name = actor.actor_name
        if name in _registry or name in _plain or (_broker is not None and name in _broker.actors):
            raise ValueError(f"An actor named {name!r} is already declared.")
        if _broker is not None:
            _declare(_broker, actor)
        _plain[name] = actor


def bind_all(broker: dramatiq.Broker | None) -> None:
    """Bind every declared actor (and those declared later) to ``broker``."""
    global _broker
    with _registry_lock:
        _broker = broker
        if broker is not None:
            for job_actor in _registry.values():
                _declare(broker, job_actor)
            for actor in _plain.values():
                _declare(broker, actor)


def bound() -> dramatiq.Broker | None:
    """The broker actors are bound to now, if the runtime is built."""
    return _broker


def plain_actors() -> dict[str, dramatiq.Actor[Any, Any]]:
    """The plain Dramatiq actors declared on docjobs' global broker, by name."""
    with _registry_lock:
        return dict(_plain)


def forget(name: str) -> None:
    """Forget a declared actor of either kind (tests): later runtimes do not bind it."""
    with _registry_lock:
        _registry.pop(name, None)
        _plain.pop(name, None)


def get(job_id: str) -> JobActor[Any, Any]:
    """The job actor declared under ``job_id``.

    Raises:
        errors.ActorNotFound: None is.
    """
    try:
        return _registry[job_id]
    except KeyError:
        raise errors.ActorNotFound(f"no job actor is declared as {job_id!r}") from None


def declared() -> dict[str, JobActor[Any, Any]]:
    """Every declared job actor by job id."""
    with _registry_lock:
        return dict(_registry)
