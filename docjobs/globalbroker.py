"""Dramatiq's global broker is docjobs' broker, from ``import docjobs`` on.

A Dramatiq user writes ``@dramatiq.actor`` and expects the actor on the app's
broker. Dramatiq binds it to its global broker and, when none is set, builds one
on localhost (issue 18: 200 jobs went to another Redis's ``dramatiq:default``).
So importing docjobs sets :data:`BROKER` as the global broker: a stand-in that
reads no settings and opens nothing. Actors declared on it are kept by the
registry and bound to the runtime's broker when that is built; whatever else it
is asked (a send, a worker's consume) builds the runtime first and is passed on,
so ``dramatiq docjobs.runtime myapp.jobs`` works as ``dramatiq
docjobs.runtime:broker myapp.jobs`` does. Once built, the runtime's broker is
the global one.

An actor bound to another broker (one set with ``dramatiq.set_broker``,
Dramatiq's default, or ``broker=``) is never routed elsewhere in silence:
``jobs.trigger`` refuses it naming its broker, and a docjobs worker refuses to
start while such an actor is loaded.
"""

from __future__ import annotations

import functools
import sys
import threading
import weakref
from collections.abc import Iterable
from typing import Any

import dramatiq
import dramatiq.broker
from dramatiq.middleware import MiddlewareError
from dramatiq.results import ResultBackend

from docjobs import context, errors, registry

#: How many foreign actors an error names before "and N more".
NAMED_AT_MOST = 5

_lock = threading.Lock()
#: Brokers the runtime built: docjobs' own, whichever runtime they belong to.
_own: weakref.WeakSet[dramatiq.Broker] = weakref.WeakSet()
#: Foreign brokers that were Dramatiq's global broker until docjobs replaced them.
_displaced: weakref.WeakSet[dramatiq.Broker] = weakref.WeakSet()


class RuntimeBroker(dramatiq.Broker):
    """Stands for the runtime's broker until it is built, and passes everything on after.

    Declaring an actor on it builds nothing; every other operation builds the
    runtime from the environment (as ``runtime.current()`` does) and is the runtime
    broker's.
    """

    def __init__(self) -> None:
        # Not Broker.__init__: the actors, queues and middleware are the runtime broker's.
        self.logger = dramatiq.logging.get_logger(__name__, type(self))

    @property
    def actors(self) -> dict[str, dramatiq.Actor[Any, Any]]:  # type: ignore[override]
        real = registry.bound()
        if real is not None:
            return real.actors
        return {**registry.declared(), **registry.plain_actors()}

    @property
    def actor_options(self) -> set[str]:  # type: ignore[override]
        real = registry.bound()
        return set(real.actor_options if real is not None else stack_actor_options())

    @property
    def middleware(self) -> list[dramatiq.Middleware]:  # type: ignore[override]
        return _runtime_broker().middleware

    @property
    def queues(self) -> Any:
        return _runtime_broker().queues

    @property
    def delay_queues(self) -> set[str]:  # type: ignore[override]
        return _runtime_broker().delay_queues

    def declare_actor(self, actor: dramatiq.Actor[Any, Any]) -> None:
        own = actor.options.get("periodic")
        if own is not None and registry.bound() is None:
            # A bad periodic= is refused now, not at the first send that builds the runtime.
            from docjobs.scheduler import declared

            declared.periodic(actor.actor_name, own)
        registry.declare_plain(actor)

    def emit_before(self, signal: str, *args: Any, **kwargs: Any) -> None:
        _runtime_broker().emit_before(signal, *args, **kwargs)

    def emit_after(self, signal: str, *args: Any, **kwargs: Any) -> None:
        if signal == "process_boot" and registry.bound() is None:
            # Only the dramatiq command boots a process on the stand-in (`dramatiq
            # docjobs.runtime myapp.jobs`): wait for the servers, and refuse in one line.
            from docjobs import startup
            from docjobs.settings import Settings

            broker = startup.command_line(
                lambda: startup.wait_until_ready(Settings.from_environ(), lambda _: _runtime_broker())
            )
        else:
            broker = _runtime_broker()
        broker.emit_after(signal, *args, **kwargs)

    def add_middleware(
        self,
        middleware: dramatiq.Middleware,
        *,
        before: type[dramatiq.Middleware] | None = None,
        after: type[dramatiq.Middleware] | None = None,
    ) -> None:
        _runtime_broker().add_middleware(middleware, before=before, after=after)

    def close(self) -> None:
        real = registry.bound()
        if real is not None:
            real.close()

    def consume(self, queue_name: str, prefetch: int = 1, timeout: int = 30000) -> dramatiq.Consumer:
        return _runtime_broker().consume(queue_name, prefetch=prefetch, timeout=timeout)

    def declare_queue(self, queue_name: str) -> None:
        _runtime_broker().declare_queue(queue_name)

    def enqueue(self, message: dramatiq.Message[Any], *, delay: int | None = None) -> dramatiq.Message[Any]:
        return _runtime_broker().enqueue(message, delay=delay)

    def get_actor(self, actor_name: str) -> dramatiq.Actor[Any, Any]:
        return _runtime_broker().get_actor(actor_name)

    def get_declared_actors(self) -> set[str]:
        return _runtime_broker().get_declared_actors()

    def get_declared_queues(self) -> set[str]:
        return _runtime_broker().get_declared_queues()

    def get_declared_delay_queues(self) -> set[str]:
        return _runtime_broker().get_declared_delay_queues()

    def get_results_backend(self) -> ResultBackend:
        return _runtime_broker().get_results_backend()

    def flush(self, queue_name: str) -> None:
        _runtime_broker().flush(queue_name)

    def flush_all(self) -> None:
        _runtime_broker().flush_all()

    def join(self, queue_name: str, *, timeout: int | None = None) -> None:
        _runtime_broker().join(queue_name, timeout=timeout)

    def __repr__(self) -> str:
        return "RuntimeBroker(docjobs' broker, built on first use)"


#: Dramatiq's global broker while docjobs' runtime is not built.
BROKER = RuntimeBroker()


def _runtime_broker() -> dramatiq.Broker:
    # The runtime builds the brokers this module stands for; it is reached through context.
    return context.current().broker


@functools.cache
def stack_actor_options() -> frozenset[str]:
    """The actor options docjobs' middleware stack declares, known before any broker is built."""
    from docjobs.brokers.middleware import default_middleware
    from docjobs.scheduler.periodiq import PeriodiqWiring

    stack = default_middleware(
        max_retries=0, min_backoff_seconds=1.0, max_backoff_seconds=1.0, max_payload_bytes=1
    )
    return frozenset().union(*(m.actor_options for m in stack), PeriodiqWiring.actor_options)


def own(broker: dramatiq.Broker) -> None:
    """Count ``broker`` as docjobs' (the runtime built it)."""
    with _lock:
        _own.add(broker)


def is_docjobs(broker: dramatiq.Broker) -> bool:
    """Whether ``broker`` is docjobs': the stand-in or one the runtime built."""
    with _lock:
        return broker is BROKER or broker in _own


def adopt(runtime_broker: dramatiq.Broker | None = None) -> None:
    """Make docjobs' broker Dramatiq's global one: ``runtime_broker``, else the stand-in.

    A foreign broker it replaces is remembered, so its actors are refused by name.
    """
    current = dramatiq.broker.global_broker
    if current is not None and not is_docjobs(current):
        with _lock:
            _displaced.add(current)
    dramatiq.set_broker(runtime_broker if runtime_broker is not None else BROKER)


def release() -> None:
    """Dramatiq's global broker is the stand-in again, if it was a runtime's (``runtime.reset``)."""
    current = dramatiq.broker.global_broker
    if current is None or is_docjobs(current):
        dramatiq.set_broker(BROKER)


def foreign_actors() -> dict[str, dramatiq.Broker]:
    """Actors docjobs can see on another broker, by name: its broker.

    Looked for on Dramatiq's global broker, on the foreign brokers docjobs
    replaced, and among the loaded modules' names (``broker=``).
    """
    found: dict[str, dramatiq.Broker] = {}
    current = dramatiq.broker.global_broker
    with _lock:
        brokers = list(_displaced)
    if current is not None and not is_docjobs(current):
        brokers.append(current)
    for broker in brokers:
        for name in broker.actors:
            found.setdefault(name, broker)
    for actor in _module_actors():
        if not isinstance(actor, registry.JobActor) and not is_docjobs(actor.broker):
            found.setdefault(actor.actor_name, actor.broker)
    return found


def refuse_foreign(name: str) -> None:
    """Refuse an actor bound to another broker, naming it.

    Raises:
        errors.ForeignActor: ``name`` is declared on a broker that is not docjobs'.
    """
    broker = foreign_actors().get(name)
    if broker is not None:
        raise errors.ForeignActor(
            f"{name} is declared on {_describe(broker)}, not on docjobs' broker, so its jobs would not "
            "reach docjobs' workers; declare it after `import docjobs`, without broker= and without "
            "dramatiq.set_broker"
        )


class ForeignActorsLoaded(errors.ForeignActor, MiddlewareError):
    """Actors bound to another broker are loaded: the worker does not start."""


def refuse_foreign_loaded() -> None:
    """Refuse to run jobs while actors bound to another broker are loaded.

    Raises:
        ForeignActorsLoaded: Such actors are loaded; the message names them and their brokers.
    """
    found = foreign_actors()
    if not found:
        return
    names = sorted(found)
    listed = ", ".join(f"{name} ({_describe(found[name])})" for name in names[:NAMED_AT_MOST])
    more = f" and {len(names) - NAMED_AT_MOST} more" if len(names) > NAMED_AT_MOST else ""
    raise ForeignActorsLoaded(
        f"refusing to start: actors declared on another broker than docjobs': {listed}{more}; "
        "declare them after `import docjobs`, without broker= and without dramatiq.set_broker"
    )


class ForeignActorCheck(dramatiq.Middleware):
    """A worker refuses to start while actors bound to another broker are loaded."""

    def before_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        # A MiddlewareError stops the worker's start; any other error would be logged and ignored.
        refuse_foreign_loaded()


def _describe(broker: dramatiq.Broker) -> str:
    return f"a {type(broker).__name__}"


def _module_actors() -> Iterable[dramatiq.Actor[Any, Any]]:
    """The Dramatiq actors that loaded modules hold under a name."""
    for module in list(sys.modules.values()):
        names = getattr(module, "__dict__", None)
        if not isinstance(names, dict):
            continue
        for value in list(names.values()):
            try:
                is_actor = isinstance(value, dramatiq.Actor)
            except Exception:  # noqa: BLE001 - a proxy object whose __class__ raises is no actor
                continue
            if is_actor:
                yield value
