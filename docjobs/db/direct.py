"""One prepared statement run through libpq directly, for the single-send hot path.

psycopg's ``execute`` spends about a third of a single send's client time in
Python (cursor, adapters, result objects). For the one statement every
``actor.send()`` runs, docjobs prepares it once per connection and calls
``PQexecPrepared`` through psycopg's own libpq wrapper (``psycopg.pq``) with
text-encoded parameters: same server work, same errors, a quarter more sends per
second from one thread (see the README's benchmark). Everything else goes through
psycopg normally.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Mapping
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg import pq

from docjobs.db.sql import Query

#: "prepared statement does not exist": a pooler or a DISCARD dropped it.
_UNDEFINED_PREPARED = "26000"
#: "prepared statement already exists": another path prepared it first.
_DUPLICATE_PREPARED = "42P05"


class DirectStatement:
    """A query run as a prepared statement straight through libpq.

    Args:
        query: The query; its ``%s`` placeholders become ``$1``, ``$2``, ... Its
            parameters must be strings or integers (no NULLs): what job_insert takes.
    """

    def __init__(self, query: Query) -> None:
        self.query = query
        self._name = f"docjobs_{query.name}".encode()
        pieces = query.text.split("%s")
        self._text = "".join(
            piece + (f"${index + 1}" if index < len(pieces) - 1 else "") for index, piece in enumerate(pieces)
        ).encode()
        self._prepared: weakref.WeakSet[pq.abc.PGconn] = weakref.WeakSet()
        self._lock = threading.Lock()

    def execute(self, conn: psycopg.Connection[Any], values: Mapping[str, str | int]) -> None:
        """Run the statement; parameters are named as in the query file.

        Raises:
            psycopg.Error: The same error class psycopg would raise (a unique
                violation is :class:`psycopg.errors.UniqueViolation`).
        """
        pgconn = conn.pgconn
        parameters = [str(values[name]).encode() for name in self.query.parameters]
        self._prepare(pgconn)
        result = pgconn.exec_prepared(self._name, parameters)
        if result.status != pq.ExecStatus.COMMAND_OK and _sqlstate(result) == _UNDEFINED_PREPARED:
            with self._lock:
                self._prepared.discard(pgconn)
            self._prepare(pgconn)
            result = pgconn.exec_prepared(self._name, parameters)
        _check(pgconn, result)

    def _prepare(self, pgconn: pq.abc.PGconn) -> None:
        with self._lock:
            if pgconn in self._prepared:
                return
        result = pgconn.prepare(self._name, self._text)
        if result.status != pq.ExecStatus.COMMAND_OK and _sqlstate(result) != _DUPLICATE_PREPARED:
            _check(pgconn, result)
        with self._lock:
            self._prepared.add(pgconn)


def _sqlstate(result: pq.abc.PGresult) -> str | None:
    code = result.error_field(pq.DiagnosticField.SQLSTATE)
    return code.decode() if code else None


def _check(pgconn: pq.abc.PGconn, result: pq.abc.PGresult) -> None:
    if result.status in (pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK):
        return
    message = (result.error_message or pgconn.error_message).decode(errors="replace").strip()
    sqlstate = _sqlstate(result)
    if sqlstate is None or pgconn.status != pq.ConnStatus.OK:
        raise psycopg.OperationalError(message or "the connection was lost")
    raise pg_errors.lookup(sqlstate)(message)
