"""docjobs' database: connections, migrations, the job store.

App code uses :func:`transaction` to enqueue jobs together with its own writes::

    with db.transaction() as conn:
        conn.execute("UPDATE document SET status = 'PENDING' WHERE id = %s", (73,))
        jobs.trigger("internal.seal-document", {"documentId": 73}, conn=conn)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from docjobs import context, errors
from docjobs.db.pool import Connection, Database

__all__ = ["Connection", "Database", "transaction"]


@contextmanager
def transaction() -> Iterator[Connection]:
    """A transaction on the runtime's database; jobs enqueued with ``conn=`` commit with it.

    Raises:
        errors.NotSupportedError: The provider has no database.
    """
    database = context.current().database
    if database is None:
        raise errors.NotSupportedError("this provider has no database to open a transaction on")
    with database.transaction() as conn:
        yield conn
