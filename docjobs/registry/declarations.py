"""The registry of actors: which are declared, and the broker they are bound to.

Actors are kept here and bound to whichever broker the runtime holds, so importing a
module of actors reads no settings and opens no connection. Plain ``@dramatiq.actor``
actors declared on Dramatiq's global broker before the runtime is built (see
``globalbroker``) are kept here too, and bound with the others. The bound broker is
``JobActor.bound_broker``, which each job actor's ``broker`` reads.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import dramatiq

from docjobs import errors, queues
from docjobs.flow.limits import Concurrency, Debounce, RateLimit, Throttle
from docjobs.registry import positional
from docjobs.registry.job_actor import JobActor

P = ParamSpec("P")
R = TypeVar("R")

DEFAULT_QUEUE = queues.DEFAULT_QUEUE
DEFAULT_VERSION = "1.0.0"

_registry: dict[str, JobActor[Any, Any]] = {}
_plain: dict[str, dramatiq.Actor[Any, Any]] = {}
_registry_lock = threading.RLock()


class DuplicateJobId(errors.DocjobsError, ValueError, ImportError):
    """A job id (an actor's name) is declared twice.

    An ``ImportError`` too: the module declaring it again cannot be imported, and
    Dramatiq's worker reports a failed import in one line, as the command line does.
    """


def actor(
    job_id: str,
    *,
    display_name: str | None = None,
    version: str = DEFAULT_VERSION,
    queue_name: str = DEFAULT_QUEUE,
    priority: int = 0,
    concurrency: Concurrency | None = None,
    throttle: Throttle | None = None,
    rate_limit: RateLimit | None = None,
    debounce: Debounce | None = None,
    **options: Any,
) -> Callable[[Callable[P, R]], JobActor[P, R]]:
    """Declare a job actor.

    Args:
        job_id: The actor name, as in the reference service (``internal.seal-document``).
        display_name: The human name; defaults to the job id.
        version: The definition's version, stored with each job.
        queue_name: The queue its jobs go to.
        priority: Lower runs first among jobs of the same queue.
        concurrency: At most this many run at once (per key), across every worker.
        throttle: At most this many start per period (per key); the rest wait.
        rate_limit: At most this many run per period (per key); the rest are dropped.
        debounce: Only the last send within the period (per key) runs, the period after it.
        **options: Dramatiq actor options (``max_retries``, ``time_limit``, ...).

    Returns:
        A decorator turning a function with keyword parameters into a :class:`JobActor`.

    Raises:
        DuplicateJobId: The job id is already taken (a ``ValueError``), naming both places.
        FlowDeclarationError: A flow-control limit is out of bounds or names a key that is
            not a payload field (a ``ValueError``).

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
            flow={
                "concurrency": concurrency,
                "throttle": throttle,
                "rate_limit": rate_limit,
                "debounce": debounce,
            },
        )
        with _registry_lock:
            taken = _taken(job_id, None)
            if taken is not None:
                raise _duplicate(job_id, taken, fn)
            _registry[job_id] = job_actor
            broker = JobActor.bound_broker
            if broker is not None:
                _declare(broker, job_actor)
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
        DuplicateJobId: Its name is taken (a ``ValueError``), naming both places.
    """
    with _registry_lock:
        name = actor.actor_name
        broker = JobActor.bound_broker
        taken = _taken(name, broker)
        if taken is not None:
            raise _duplicate(name, taken, actor.fn)
        if broker is not None:
            _declare(broker, actor)
        _plain[name] = actor


def _taken(name: str, broker: dramatiq.Broker | None) -> dramatiq.Actor[Any, Any] | None:
    """The actor already declared under ``name``, here or on ``broker``, if any."""
    for actors in (_registry, _plain, broker.actors if broker is not None else {}):
        if name in actors:
            return actors[name]
    return None


def _duplicate(job_id: str, taken: dramatiq.Actor[Any, Any], fn: Callable[..., Any]) -> DuplicateJobId:
    return DuplicateJobId(
        f"job id {job_id!r} is already declared by {_where(taken.fn)}; {_where(fn)} declares it again: "
        "give your job an id of its own"
    )


def _where(fn: Callable[..., Any]) -> str:
    """``module.function (file:line)``: where an actor is declared (its decorator's line)."""
    qualname = getattr(fn, "__qualname__", None) or repr(fn)
    name = f"{getattr(fn, '__module__', None) or '?'}.{qualname}"
    code = getattr(fn, "__code__", None)
    if code is None:
        return name
    path = code.co_filename
    if os.path.isabs(path) and path.startswith(os.getcwd() + os.sep):
        path = os.path.relpath(path)  # the app's own files, as its author names them
    return f"{name} ({path}:{code.co_firstlineno})"


def bind_all(broker: dramatiq.Broker | None) -> None:
    """Bind every declared actor (and those declared later) to ``broker``."""
    with _registry_lock:
        JobActor.bound_broker = broker
        if broker is not None:
            for job_actor in _registry.values():
                _declare(broker, job_actor)
            for actor in _plain.values():
                _declare(broker, actor)


def bound() -> dramatiq.Broker | None:
    """The broker actors are bound to now, if the runtime is built."""
    return JobActor.bound_broker


def check_links(broker: dramatiq.Broker, message: dramatiq.Message[Any]) -> None:
    """Refuse, at send, a callback or pipeline step that cannot take what Dramatiq hands it.

    Only declared job actors are checked; see ``positional.check_links``.

    Raises:
        errors.PayloadError: Naming the job, the callback or step, and why.
    """
    positional.check_links(broker, message, _registry)


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
