"""The process's services as the layers below the runtime see them.

The registry, the global broker's stand-in and ``db.transaction()`` need the broker
or the database the runtime built, but the runtime imports them: asking it directly
would be an import cycle. They ask here instead. The runtime binds itself when it is
installed (``runtime.install``) and unbinds when reset; before that, :func:`current`
calls the factory the package registers (``docjobs/__init__.py``), which configures
the runtime from the environment, so ``import docjobs; some_actor.send()`` works as it
always did.

A leaf: this module imports nothing of docjobs but the settings and errors, which is
why :class:`Services` names the database by what it offers rather than by its class.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Protocol

import dramatiq
import psycopg

from docjobs import errors
from docjobs.settings import Settings

#: A connection as ``db.pool`` hands it out (rows as dicts).
Connection = psycopg.Connection[dict[str, Any]]


class Transactions(Protocol):
    """The part of ``db.pool.Database`` the lower layers use."""

    def connection(self) -> AbstractContextManager[Connection]:
        """A pooled connection, in autocommit."""
        ...

    def transaction(self) -> AbstractContextManager[Connection]:
        """A pooled connection inside a transaction, committed when the block ends."""
        ...


class Services(Protocol):
    """What the layers below the runtime read from it (``runtime.Runtime`` is one)."""

    @property
    def settings(self) -> Settings:
        """The settings the runtime was built from."""
        ...

    @property
    def broker(self) -> dramatiq.Broker:
        """The provider's broker."""
        ...

    @property
    def database(self) -> Transactions | None:
        """The app's database; ``None`` when the provider has none."""
        ...

    def require_database(self) -> Transactions:
        """The app's database.

        Raises:
            errors.NotSupportedError: The provider has none.
        """
        ...


_bound: Services | None = None
_factory: Callable[[], Services] | None = None


def bind(services: Services) -> None:
    """Make ``services`` what :func:`current` returns (``runtime.install``)."""
    global _bound
    _bound = services


def unbind() -> None:
    """Forget the bound services: the next :func:`current` calls the factory (``runtime.reset``)."""
    global _bound
    _bound = None


def set_factory(factory: Callable[[], Services]) -> None:
    """Register what builds (and binds) the services on first use."""
    global _factory
    _factory = factory


def current() -> Services:
    """The bound services, built by the factory on first use.

    No lock here: the factory (``runtime.current``) holds the runtime's own while it
    builds, so two threads asking at once get the one runtime.

    Raises:
        errors.DocjobsError: Nothing is bound and no factory is registered.
    """
    bound = _bound
    if bound is not None:
        return bound
    if _factory is None:
        raise errors.DocjobsError("docjobs has no runtime: call docjobs.runtime.configure() first")
    return _factory()
