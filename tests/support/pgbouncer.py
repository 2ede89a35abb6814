"""Debian's real PgBouncer (``apt-get install -y pgbouncer``) in transaction mode, on a free loopback port.

It fronts the test's PostgreSQL as a managed provider's pooler does: ``pool_mode =
transaction``, no extra start-up parameters accepted (``options`` is refused), and
``DISCARD ALL`` after every transaction, so that a client relying on session state
(a prepared statement, a session setting, a session advisory lock) fails at once
rather than only when two server connections happen to take turns. PgBouncer 1.18
keeps no prepared statements across transactions anyway; the reset makes it certain.

A missing binary or a PgBouncer that does not answer raises
:class:`~docjobs.errors.ServiceError`: a failure, never a skip.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
from docjobs_devkit.services import free_port

from docjobs import errors

#: Where Debian's package installs it.
PGBOUNCER_BINARY = "/usr/sbin/pgbouncer"
START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 10.0


class PgBouncer:
    """A PgBouncer process in transaction mode in front of ``postgres_port`` on 127.0.0.1.

    Args:
        postgres_port: The PostgreSQL server's port (trust authentication, user ``postgres``).
        pool_size: Server connections per database and user (``default_pool_size``).
    """

    def __init__(self, postgres_port: int, *, pool_size: int = 20) -> None:
        binary = shutil.which("pgbouncer") or (PGBOUNCER_BINARY if os.path.exists(PGBOUNCER_BINARY) else None)
        if binary is None:
            raise errors.ServiceError("pgbouncer not found: install it (apt-get install -y pgbouncer)")
        self.binary = binary
        self.postgres_port = postgres_port
        self.pool_size = pool_size
        self.port = 0
        self.directory: Path | None = None
        self.process: subprocess.Popen[bytes] | None = None
        # PgBouncer refuses to run as root.
        self._user = "nobody" if os.geteuid() == 0 else None

    def url(self, database: str) -> str:
        """The URL of ``database`` through PgBouncer."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> PgBouncer:
        """Write the configuration and start PgBouncer; returns once it answers.

        Raises:
            errors.ServiceError: It did not start (its log's tail is in the message).
        """
        self.directory = Path(tempfile.mkdtemp(prefix="docjobs-pgbouncer-"))
        if self._user is not None:
            entry = pwd.getpwnam(self._user)
            os.chown(self.directory, entry.pw_uid, entry.pw_gid)
        (self.directory / "userlist.txt").write_text('"postgres" ""\n')
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        for _ in range(5):  # another process may grab the free port first
            self.port = free_port()
            self._write_config()
            if self._launch(deadline):
                return self
        raise errors.ServiceError(f"pgbouncer did not start; log:\n{self._log_tail()}")

    def _write_config(self) -> None:
        assert self.directory is not None
        config = f"""\
[databases]
* = host=127.0.0.1 port={self.postgres_port} user=postgres

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {self.port}
unix_socket_dir =
auth_type = trust
auth_file = {self.directory / "userlist.txt"}
admin_users = postgres
pool_mode = transaction
default_pool_size = {self.pool_size}
max_client_conn = 1000
server_reset_query = DISCARD ALL
server_reset_query_always = 1
ignore_startup_parameters =
logfile = {self.directory / "pgbouncer.log"}
pidfile = {self.directory / "pgbouncer.pid"}
"""
        (self.directory / "pgbouncer.ini").write_text(config)

    def _launch(self, deadline: float) -> bool:
        assert self.directory is not None
        command = [self.binary, "-q", str(self.directory / "pgbouncer.ini")]
        if self._user is not None:
            command[1:1] = ["-u", self._user]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                with psycopg.connect(self.url("postgres"), connect_timeout=1, prepare_threshold=None):
                    return True
            except psycopg.OperationalError:
                time.sleep(0.05)
        self.stop()
        return False

    def clients(self, database: str) -> list[dict[str, str]]:
        """PgBouncer's ``SHOW CLIENTS`` rows for ``database`` (the client side of the pooler)."""
        with psycopg.connect(self.url("pgbouncer"), autocommit=True, prepare_threshold=None) as admin:
            cursor = admin.execute("SHOW CLIENTS")
            names = [column.name for column in cursor.description or ()]
            rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        return [row for row in rows if row["database"] == database]

    def _log_tail(self) -> str:
        log = self.directory / "pgbouncer.log" if self.directory else None
        return log.read_text()[-2000:] if log is not None and log.exists() else "(no log)"

    def stop(self) -> None:
        """Stop PgBouncer and delete its files; safe to call twice."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None
