"""Connections to docjobs' PostgreSQL database, and transactions with after-commit hooks.

The connection budget: one :class:`Database` per process opens at most ``max_size``
connections to PostgreSQL (``NEXT_PRIVATE_JOBS_DB_POOL_SIZE``), the LISTEN connection
included: the pool gets ``max_size - 1`` when the process listens, ``max_size``
otherwise. Consumers, the heartbeat, history writers and the scheduler borrow from
the pool; nothing else connects (migrations run in ``docjobs migrate``, alone).

Two connection modes (docs/operations.md):

- *session* (the default, a direct URL or a session pooler): docjobs' bookkeeping
  writes (claims, acks, heartbeats, history) skip the WAL flush wait (``SET
  synchronous_commit TO off`` on the connection they borrow, undone when the app
  borrows it), standalone enqueues keep the server's setting unless
  ``NEXT_PRIVATE_JOBS_SYNCHRONOUS_COMMIT=false`` (docs/reliability.md), the job
  insert is a prepared statement, and the LISTEN connection uses the same URL;
- *transaction pooling* (PgBouncer ``pool_mode = transaction``): no start-up options,
  no session state, no prepared statements (``prepare_threshold=None``); LISTEN goes
  to the direct URL, or is off (consumers poll) when there is none.

Statements that say their own durability (enqueues, the doorbell) borrow with
:meth:`Database.connection_as_is`: they run ``set_config('synchronous_commit', ...,
true)``, which holds for their own transaction only, so the session is left as it is
(issue 21: switching it per borrow cost a round trip on a quarter of the sends). This
works behind a transaction pooler too.

Every connection carries ``application_name = docjobs-<role>-<host>-<pid>`` so that
``pg_stat_activity`` shows which process holds what.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from docjobs import errors
from docjobs.db import sql
from docjobs.logging import first_line

if TYPE_CHECKING:
    from docjobs.settings import Settings

logger = logging.getLogger(__name__)
# psycopg_pool warns at every failed connection attempt. In an app that configured no
# logging, Python's last-resort handler printed each on stderr, about once a second of an
# outage, beside docjobs' own one-line error; configured logging still receives them.
logging.getLogger("psycopg.pool").addHandler(logging.NullHandler())

DEFAULT_CONNECT_TIMEOUT_SECONDS = 10.0
#: The longest series of reconnection attempts (1, 2, 4 s apart, ...) before the pool
#: starts a new one: bounds how long a process lags a database that came back.
RECONNECT_SERIES_SECONDS = 10.0
#: PostgreSQL keeps this many bytes of an application_name (NAMEDATALEN - 1).
MAX_APPLICATION_NAME_BYTES = 63
#: What a process is called in application_name until its entry point says otherwise.
DEFAULT_PROCESS_ROLE = "app"
#: The variable a database URL comes from, in errors about it.
DATABASE_URL_VARIABLE = "NEXT_PRIVATE_DATABASE_URL"
#: A server's refusals that another try may get past: it is starting, stopping or full.
TRANSIENT_SERVER_REFUSALS = (
    "the database system is starting up",
    "the database system is shutting down",
    "the database system is in recovery mode",
    "the database system is not yet accepting connections",
    "the database system is not accepting connections",
    "sorry, too many clients already",
    "remaining connection slots are reserved",
    "too many connections for",
)
#: libpq's (and psycopg's) words when no server could be reached, or the connection to it
#: dropped mid-way: nothing was refused, and another try may find it up. Anything else
#: libpq says on its own is about the URL and this client (no password, SSL or GSSAPI
#: required, certificates, authentication requirements): no retry fixes it.
UNREACHABLE_REASONS = (
    "Connection refused",
    "Connection timed out",
    "timeout expired",
    "No route to host",
    "Network is unreachable",
    "Host is unreachable",
    "No such file or directory",  # a Unix socket not there (yet)
    "could not translate host name",
    "failed to resolve host",
    "Temporary failure in name resolution",
    "Name or service not known",
    "server closed the connection unexpectedly",
    "Connection reset by peer",
    "could not receive data from server",
    "could not send data to server",
    "SSL SYSCALL error",
)
#: Client-side refusals that name a file (a certificate, a key) which may also say
#: "No such file or directory": about this client's files, so permanent.
_CLIENT_FILES = re.compile(r"certificate|private key|\bkey file|\bcrl\b", re.IGNORECASE)
#: libpq's reasons that plain words explain better, and the words.
_EXPLAINED = {
    "fe_sendauth: no password supplied": "the server asks for a password and {variable} has none",
}
#: libpq's words for a URL option it cannot use (no server was asked).
_MALFORMED_OPTION = re.compile(
    r"invalid (?:integer )?value|invalid \w+ value|invalid port number|could not match \d+ port numbers"
    r"|bad value for"
)
#: What psycopg puts before libpq's message, and libpq before a server's refusal.
_LIBPQ_PREFIXES = re.compile(r"^(?:connection failed: |connection is bad: )")
_SERVER_SEVERITY = re.compile(r"\b(?:FATAL|ERROR): +")
#: libpq's "connection to server at "host" (address), port 5432 failed: reason".
_LIBPQ_ATTEMPT = re.compile(
    r'connection to server (?:at "(?P<host>[^"]*)"(?: \([^)]*\))?, port (?P<port>\d+)'
    r'|on socket "(?P<socket>[^"]*)") failed: (?P<reason>.*)'
)

Connection = psycopg.Connection[dict[str, Any]]

#: What a statement that says its own durability passes as ``%(synchronous_commit)s``
#: (``nullif(%(synchronous_commit)s, 'default')``): the server's own setting ...
COMMIT_AS_SERVER = "default"
#: ... or no wait for the WAL flush.
COMMIT_ASYNCHRONOUS = "off"

# After-commit hooks by connection, for every Database of the process: the job
# store may use another pool than the app's transaction.
_hooks: dict[int, list[Callable[[], None]]] = {}
_hooks_lock = threading.Lock()
_process_role = DEFAULT_PROCESS_ROLE


def set_process_role(role: str) -> None:
    """Name what this process is (``web``, ``worker``, ``scheduler``...) in ``application_name``.

    Connections opened afterwards carry it; the entry points call this before they connect.
    """
    global _process_role
    _process_role = role


def suggest_process_role(role: str) -> None:
    """Name the process ``role`` unless its entry point named it already (``docjobs web``
    also boots a Dramatiq worker, and stays ``web``)."""
    global _process_role
    if _process_role == DEFAULT_PROCESS_ROLE:
        _process_role = role


def application_name(role: str | None = None) -> str:
    """``docjobs-<role>-<host>-<pid>``, the host shortened to fit PostgreSQL's 63 bytes."""
    prefix = f"docjobs-{role or _process_role}-"
    suffix = f"-{os.getpid()}"
    room = MAX_APPLICATION_NAME_BYTES - len(prefix.encode()) - len(suffix.encode())
    host = socket.gethostname().split(".")[0].encode("ascii", "replace")[: max(room, 0)].decode("ascii")
    return f"{prefix}{host}{suffix}"


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


class DatabaseRefused(errors.SettingsError):
    """The database refused docjobs' connection: its role, database or password is wrong."""


@dataclass(frozen=True)
class ConnectFailure:
    """Why a connection to PostgreSQL failed, as libpq said it, and whether to try again.

    Attributes:
        reason: libpq's reason, one line (libpq never quotes a password).
        transient: The server was unreachable, starting, stopping or full: another try may work.
        malformed: libpq refused an option of the URL itself; no server was asked.
        where: The server libpq tried (``host:port`` or the socket), when it says.
        refused: The server said no (a ``FATAL`` of its own), rather than libpq on this side.
    """

    reason: str
    transient: bool
    malformed: bool = False
    where: str | None = None
    refused: bool = False

    @property
    def database(self) -> str:
        """``the database`` and where it is, for the start of a sentence."""
        return f"the database at {self.where}" if self.where else "the database"

    def error(self, variable: str = DATABASE_URL_VARIABLE) -> errors.SettingsError:
        """The error a failure that no retry fixes is: a bad setting, named by ``variable``."""
        if self.malformed:
            return errors.SettingsError(f"{variable}: {self.reason}")
        if self.refused:
            refusal = f"{self.database} refused the connection: {self.reason} (check {variable})"
            return DatabaseRefused(refusal)
        explained = _EXPLAINED.get(self.reason)
        reason = f"{explained.format(variable=variable)} ({self.reason})" if explained else self.reason
        return errors.SettingsError(f"cannot connect to {self.database}: {reason} (check {variable})")


def connect_failure(exc: psycopg.Error) -> ConnectFailure:
    """Read a failed connection attempt: libpq's reason, and whether another try may work.

    Transient only when no server could be reached (refused, timed out, no such host
    or socket, the connection dropped) or the server said it is starting, stopping or
    full. Everything else is permanent: a server's refusal (``FATAL: role "nobody"
    does not exist``, a wrong password, no such database), an option libpq cannot use,
    and what libpq refuses on this side (``fe_sendauth: no password supplied``,
    ``server does not support SSL, but SSL was required``, certificates, GSSAPI,
    ``require_auth``, channel binding).
    """
    text = str(exc)
    first = first_line(exc)
    reason = _SERVER_SEVERITY.sub("", _LIBPQ_PREFIXES.sub("", first)).strip()
    where = None
    attempt = _LIBPQ_ATTEMPT.search(reason)
    if attempt is not None:
        where = attempt["socket"] or f"{attempt['host']}:{attempt['port']}"
        reason = attempt["reason"].strip()
    if isinstance(exc, psycopg.ProgrammingError) or _MALFORMED_OPTION.search(first):
        return ConnectFailure(reason, transient=False, malformed=True, where=where)
    if _SERVER_SEVERITY.search(text):
        busy = any(words in text for words in TRANSIENT_SERVER_REFUSALS)
        return ConnectFailure(reason, transient=busy, where=where, refused=not busy)
    unreachable = any(words in reason for words in UNREACHABLE_REASONS) and not _CLIENT_FILES.search(reason)
    return ConnectFailure(reason, transient=unreachable, where=where)


def connect(url: str, *, variable: str = DATABASE_URL_VARIABLE, **kwargs: Any) -> psycopg.Connection[Any]:
    """``psycopg.connect``, where a failure no retry fixes is a bad setting named by ``variable``.

    Raises:
        errors.SettingsError: The URL has an option libpq cannot use, the server refused
            the role, database or password (:class:`DatabaseRefused`), or libpq refused to
            go on (no password to give, SSL the server lacks, a certificate), at once.
        psycopg.OperationalError: The server is unreachable, starting, stopping or full.
    """
    try:
        conn: psycopg.Connection[Any] = psycopg.connect(url, **kwargs)
    except psycopg.Error as exc:
        failure = connect_failure(exc)
        if failure.transient:
            raise
        raise failure.error(variable) from None
    return conn


class Database:
    """One process's connections: a pool of autocommit connections, plus the LISTEN one.

    Args:
        url: A ``postgresql://`` URL.
        max_size: The most connections this database opens at once, the LISTEN
            connection included (the process's connection budget).
        name: A label for the pool in logs.
        synchronous_commit: ``False`` lets the enqueues made through
            :meth:`for_enqueues` return before their WAL reaches the disk, as the
            writes made through :meth:`for_own_writes` always do (those only in
            session mode: a transaction pooler keeps no session settings; the
            enqueues set theirs per statement, so in either mode).
        transaction_pooling: ``url`` goes through a transaction pooler (PgBouncer
            ``pool_mode = transaction``): no start-up options, no session state, no
            prepared statements.
        direct_url: A URL that reaches PostgreSQL itself, for LISTEN.
        listen: Keep one connection of the budget for LISTEN, if there is a URL
            that can LISTEN (``url`` in session mode, else ``direct_url``).

    Raises:
        errors.SettingsError: The budget leaves no pooled connection beside LISTEN.
    """

    def __init__(
        self,
        url: str,
        *,
        max_size: int = 10,
        name: str = "docjobs",
        synchronous_commit: bool = True,
        transaction_pooling: bool = False,
        direct_url: str | None = None,
        listen: bool = False,
    ) -> None:
        self.url = url
        self.transaction_pooling = transaction_pooling
        #: Where LISTEN connects, or ``None`` when no URL keeps a session.
        self.listen_url = direct_url if transaction_pooling else (direct_url or url)
        self.listens = listen and self.listen_url is not None
        pooled = max_size - (1 if self.listens else 0)
        if pooled < 1:
            raise errors.SettingsError(
                f"NEXT_PRIVATE_JOBS_DB_POOL_SIZE={max_size} leaves no pooled connection beside the LISTEN "
                "connection: set it to 2 or more, or NEXT_PRIVATE_JOBS_LISTEN=false"
            )
        self.max_size = max_size
        self._state = _PoolState(url, pooled, name, transaction_pooling)
        # Own writes skip the WAL flush only where a session setting stays put.
        self._async_allowed = not transaction_pooling
        self._durable = True
        # Whether standalone enqueues wait for the WAL flush (issue 21: by default they do).
        self._enqueues_durable = synchronous_commit

    @classmethod
    def from_settings(cls, settings: Settings, *, listen: bool = False) -> Database:
        """The process's database as the settings describe it (URL, budget, pooling mode).

        Args:
            settings: Settings with a database URL.
            listen: Whether this process LISTENs (the local provider's consumers do).
        """
        assert settings.database_url is not None
        return cls(
            settings.database_url,
            max_size=settings.pool_size,
            synchronous_commit=settings.synchronous_commit,
            transaction_pooling=settings.transaction_pooling,
            direct_url=settings.direct_database_url,
            listen=listen and settings.listen,
        )

    def for_own_writes(self) -> Database:
        """The same pool, whose connections skip the WAL flush wait (session mode).

        docjobs' bookkeeping (claims, acks, retries, heartbeats, history) uses it: a
        PostgreSQL crash may lose its last writes, and losing one only runs a job
        again. The app's transactions keep their durability. Closing either closes both.
        """
        return self._view(durable=False)

    def for_enqueues(self) -> Database:
        """The same pool, for standalone enqueues: durable unless ``synchronous_commit=False``.

        A job sent outside the app's transaction has reached the disk when the send
        returns, as the server's ``synchronous_commit`` (``on`` by default) makes it.
        """
        return self._view(durable=self._enqueues_durable)

    @property
    def commit_setting(self) -> str:
        """The ``synchronous_commit`` a statement borrowed through :meth:`connection_as_is`
        sets for its own transaction: :data:`COMMIT_AS_SERVER` for a durable view,
        :data:`COMMIT_ASYNCHRONOUS` otherwise."""
        return COMMIT_AS_SERVER if self._durable else COMMIT_ASYNCHRONOUS

    def _view(self, *, durable: bool) -> Database:
        view = object.__new__(Database)
        view.__dict__.update(self.__dict__)
        view._durable = durable
        return view

    @property
    def pool(self) -> ConnectionPool[Connection]:
        """The connection pool (``max_size``, less the LISTEN connection)."""
        return self._state.pool

    def open(self) -> None:
        """Open the pool, waiting until one connection works.

        Raises:
            errors.SettingsError: The server refused the role, database or password, or the
                URL has an option libpq cannot use: said at once, not after the time-out.
            psycopg_pool.PoolTimeout: No connection within the time-out; the next call tries again.
        """
        self._state.open()

    def close(self) -> None:
        """Close every pooled connection; safe to call twice."""
        self._state.close()

    @contextmanager
    def connection(self, *, timeout_seconds: float | None = None) -> Iterator[Connection]:
        """Borrow an autocommit connection from the pool, its session as durable as this view.

        Args:
            timeout_seconds: The longest wait for a connection (the pool's 10 s by default).
        """
        state = self._state
        if not state.opened:
            state.open()
        with state.pool.connection(timeout=timeout_seconds) as conn:
            if self._async_allowed:
                state.set_synchronous_commit(conn, durable=self._durable)
            yield conn

    def connection_as_is(self) -> _Borrowed:
        """Borrow an autocommit connection without touching its session settings.

        For statements that set their durability for their own transaction (they pass
        :attr:`commit_setting` to ``set_config('synchronous_commit', ..., true)``): the
        session's ``synchronous_commit`` may be either, left by the last borrower.
        Every standalone send borrows this way, so it is the pool's ``getconn`` and
        ``putconn`` alone (see :class:`_Borrowed`).
        """
        state = self._state
        if not state.opened:
            state.open()
        return _Borrowed(state.pool)

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

    def connect_listener(self) -> Connection:
        """Open the LISTEN connection (the one connection of the budget outside the pool).

        Raises:
            errors.NotSupportedError: No URL here keeps a session (transaction pooling
                without ``NEXT_PRIVATE_DIRECT_DATABASE_URL``).
        """
        if self.listen_url is None:
            raise errors.NotSupportedError(
                "LISTEN needs a session: set NEXT_PRIVATE_DIRECT_DATABASE_URL behind a transaction pooler"
            )
        return psycopg.connect(self.listen_url, **connect_kwargs(transaction_pooling=False))


class _Borrowed:
    """``with``: one pooled autocommit connection, handed back on the way out.

    ``ConnectionPool.connection()`` adds the connection's own ``with`` (a COMMIT that
    autocommit makes empty, a ROLLBACK on error that it makes moot) and two generator
    context managers: ~10 of a standalone send's ~200 us of client CPU (issue 21). The
    pool's guarantees live in ``putconn``, which still runs: a broken connection, or one
    left inside a transaction, is rolled back or replaced, an old one retired.
    """

    __slots__ = ("_conn", "_pool")

    def __init__(self, pool: ConnectionPool[Connection]) -> None:
        self._pool = pool
        self._conn: Connection | None = None

    def __enter__(self) -> Connection:
        self._conn = self._pool.getconn()
        return self._conn

    def __exit__(self, *exc_info: object) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            self._pool.putconn(conn)


def connect_kwargs(*, transaction_pooling: bool) -> dict[str, Any]:
    """What every docjobs connection is opened with: autocommit, dict rows, its name;
    behind a transaction pooler, no prepared statements."""
    kwargs: dict[str, Any] = {
        "autocommit": True,
        "row_factory": dict_row,
        "application_name": application_name(),
        "connect_timeout": int(DEFAULT_CONNECT_TIMEOUT_SECONDS),
    }
    if transaction_pooling:
        # PgBouncer 1.18 in transaction mode gives each transaction any server
        # connection: a statement prepared on one is unknown on the next.
        kwargs["prepare_threshold"] = None
    return kwargs


class _PoolState:
    """The pool a :class:`Database` and its :meth:`~Database.for_own_writes` view share."""

    def __init__(self, url: str, max_size: int, name: str, transaction_pooling: bool) -> None:
        self.url = url
        self.max_size = max_size
        self.name = name
        self.transaction_pooling = transaction_pooling
        self.pool = self._new_pool()
        self.opened = False
        self._open_lock = threading.Lock()
        self._failed_opens = 0
        self._last_failure: str | None = None
        self._last_refusal: errors.SettingsError | None = None
        # Connections on which docjobs set synchronous_commit off for its own writes.
        self._asynchronous: weakref.WeakSet[Connection] = weakref.WeakSet()

    def _new_pool(self) -> ConnectionPool[Connection]:
        return ConnectionPool(
            self.url,
            min_size=1,
            max_size=self.max_size,
            # A callable: the process role (hence application_name) may be set after
            # the runtime is built, e.g. by the Dramatiq worker's process_boot.
            kwargs=lambda: connect_kwargs(transaction_pooling=self.transaction_pooling),
            open=False,
            name=self.name,
            timeout=DEFAULT_CONNECT_TIMEOUT_SECONDS,
            # The pool retries a lost connection with a doubling delay until this time-out,
            # then gives up and starts again at 1 s on the next borrow. Its default of 300 s
            # let the delay reach 64 s: after a 3-minute outage every process stayed down
            # about a minute after PostgreSQL was back (outside trial, issue 21).
            reconnect_timeout=RECONNECT_SERIES_SECONDS,
        )

    def open(self) -> None:
        attempts_before = self._failed_opens
        with self._open_lock:
            if self.opened:
                return
            if self._failed_opens != attempts_before and self._last_failure is not None:
                # An attempt failed while this thread waited for it: share its outcome
                # rather than queue another full time-out behind it (the consumer, the
                # heartbeat and the health check all borrow from this one pool).
                if self._last_refusal is not None:
                    raise type(self._last_refusal)(str(self._last_refusal))
                raise PoolTimeout(self._last_failure)
            try:
                unreachable = self._probe()
                try:
                    self.pool.open(wait=True, timeout=DEFAULT_CONNECT_TIMEOUT_SECONDS)
                except PoolTimeout as timeout:
                    if unreachable is None:
                        raise
                    # libpq's reason rather than "pool initialization incomplete".
                    where = f"{unreachable.where}: " if unreachable.where else ""
                    within = f"no connection within {DEFAULT_CONNECT_TIMEOUT_SECONDS:g} s"
                    raise PoolTimeout(f"{where}{unreachable.reason} ({within})") from timeout
            except BaseException as exc:
                # psycopg_pool closes a pool whose first connection never came, and a
                # closed pool cannot be opened again: without a new one, a process
                # started while the database was down would fail every job for ever.
                self.pool = self._new_pool()
                self._failed_opens += 1
                self._last_failure = str(exc)
                self._last_refusal = exc if isinstance(exc, errors.SettingsError) else None
                raise
            self.opened = True

    def _probe(self) -> ConnectFailure | None:
        """Connect once, so that a refusal no retry fixes is said at once.

        psycopg_pool retries every failed connection until its time-out and then says only
        "pool initialization incomplete": ``role "nobody" does not exist`` would be hidden
        behind ten seconds of waiting. A transient failure is left to the pool's wait, and
        returned, so that a time-out can say libpq's reason.
        """
        try:
            connect(self.url, **connect_kwargs(transaction_pooling=self.transaction_pooling)).close()
        except psycopg.OperationalError as exc:
            return connect_failure(exc)  # unreachable for now: the pool waits for it, as before
        return None

    def close(self) -> None:
        with self._open_lock:
            if self.opened:
                self.pool.close()
                self.opened = False

    def set_synchronous_commit(self, conn: Connection, *, durable: bool) -> None:
        """Switch the session's setting only when the borrower wants the other one
        (one round trip then, none otherwise)."""
        asynchronous = conn in self._asynchronous
        if durable and asynchronous:
            sql.queries()["database_commit_durable"].execute(conn)
            self._asynchronous.discard(conn)
        elif not durable and not asynchronous:
            sql.queries()["database_commit_asynchronous"].execute(conn)
            self._asynchronous.add(conn)
