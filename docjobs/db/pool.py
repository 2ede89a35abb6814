"""Connections to docjobs' PostgreSQL database, and transactions with after-commit hooks."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

logger = logging.getLogger(__name__)

DEFAULT_CONNECT_TIMEOUT_SECONDS = 10.0

Connection = psycopg.Connection[dict[str, Any]]

# After-commit hooks by connection, for every Database of the process: the job
# store may use another pool than the app's transaction.
_hooks: dict[int, list[Callable[[], None]]] = {}
_hooks_lock = threading.Lock()


def on_commit(conn: psycopg.Connection[Any], hook: Callable[[], None]) -> bool:
    """Run ``hook`` after ``conn``'s transaction commits (dropped on rollback).

    Returns:
        ``True`` when ``conn`` is inside :meth:`Database.transaction`; ``False`` when
        it is a connection docjobs does not manage, whose commit it cannot see.
    """
    with _hooks_lock:
        hooks = _hooks.get(id(conn))
        if hooks is None:
            return False
        hooks.append(hook)
        return True


class Database:
    """A pool of autocommit connections plus dedicated connections for long-lived readers.

    Args:
        url: A ``postgresql://`` URL.
        max_size: The most pooled connections.
        name: A label for the pool in logs.
        synchronous_commit: ``False`` sets ``synchronous_commit=off`` on every
            connection: a commit returns before its WAL reaches the disk.
    """

    def __init__(
        self, url: str, *, max_size: int = 10, name: str = "docjobs", synchronous_commit: bool = True
    ) -> None:
        self.url = url
        self._connect_kwargs: dict[str, Any] = {"autocommit": True, "row_factory": dict_row}
        if not synchronous_commit:
            self._connect_kwargs["options"] = "-c synchronous_commit=off"
        self._max_size = max_size
        self._name = name
        self.pool = self._new_pool()
        self._opened = False
        self._open_lock = threading.Lock()

    def _new_pool(self) -> ConnectionPool[Connection]:
        return ConnectionPool(
            self.url,
            min_size=1,
            max_size=self._max_size,
            kwargs=self._connect_kwargs,
            open=False,
            name=self._name,
            timeout=DEFAULT_CONNECT_TIMEOUT_SECONDS,
        )

    def open(self) -> None:
        """Open the pool, waiting until one connection works.

        Raises:
            psycopg_pool.PoolTimeout: No connection within the time-out; the next call tries again.
        """
        with self._open_lock:
            if not self._opened:
                try:
                    self.pool.open(wait=True, timeout=DEFAULT_CONNECT_TIMEOUT_SECONDS)
                except BaseException:
                    # psycopg_pool closes a pool whose first connection never came, and a
                    # closed pool cannot be opened again: without a new one, a process
                    # started while the database was down would fail every job for ever.
                    self.pool = self._new_pool()
                    raise
                self._opened = True

    def close(self) -> None:
        """Close every pooled connection; safe to call twice."""
        with self._open_lock:
            if self._opened:
                self.pool.close()
                self._opened = False

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        """Borrow an autocommit connection from the pool."""
        if not self._opened:
            self.open()
        with self.pool.connection() as conn:
            yield conn

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """Run a block in one transaction; enqueues made with ``conn=`` commit with it.

        Callbacks registered with :func:`on_commit` for this connection run after the
        commit, and are dropped on rollback.
        """
        with self.connection() as conn:
            key = id(conn)
            with _hooks_lock:
                _hooks[key] = []
            try:
                with conn.transaction():
                    yield conn
            except BaseException:
                with _hooks_lock:
                    _hooks.pop(key, None)
                raise
            with _hooks_lock:
                hooks = _hooks.pop(key, [])
        for hook in hooks:
            try:
                hook()
            except Exception:
                logger.exception("An after-commit hook failed.", extra={"action": "after_commit_failed"})

    def connect(self) -> Connection:
        """Open a dedicated autocommit connection (consumers, the listener)."""
        return psycopg.connect(
            self.url, connect_timeout=int(DEFAULT_CONNECT_TIMEOUT_SECONDS), **self._connect_kwargs
        )
