"""How the long-running processes start: wait for their servers, and refuse in one line.

``docjobs web``, ``docjobs worker``, ``docjobs scheduler`` and the processes the
``dramatiq`` and ``periodiq`` commands start on ``docjobs.runtime:broker`` all begin
with :func:`wait_until_ready`:

- a server that is down or unreachable (PostgreSQL, or Redis on bullmq) is waited for,
  with a capped exponential backoff and one log line per step naming libpq's (or
  Redis's) reason: a container started before its database comes up by itself, and the
  log says why it has not yet (a supervisor that prefers an exit can time the process
  out; docjobs keeps trying, issue 20);
- what no retry fixes stops the process at once, in one line: a bad setting, a role or
  database the server refuses, a database without docjobs' schema (``run docjobs
  migrate``).

Under the ``dramatiq`` and ``periodiq`` commands, which print a traceback for any error
raised while they import the broker, :func:`command_line` turns docjobs' errors into the
same one line the ``docjobs`` command prints, and exit status 2.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator
from typing import NoReturn, TypeVar

import psycopg
from dramatiq.errors import BrokerConnectionError

from docjobs import errors, redaction
from docjobs.backoff import retry_delays
from docjobs.db import pool, readiness
from docjobs.logging import first_line, one_line
from docjobs.settings import Settings

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Exit status of a process refused at start-up (as the ``docjobs`` command's bad settings).
EXIT_REFUSED = 2
#: Signals that stop a process while it waits for its servers.
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def wait_until_ready(
    settings: Settings,
    build: Callable[[Settings], T],
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Check the database (reachable, migrated), then ``build``; retry while a server is down.

    Args:
        settings: The process's settings.
        build: Builds what the process runs on (the runtime); on bullmq it pings Redis.
        sleep: Waits between attempts (tests pass a fake clock's).

    Returns:
        What ``build`` returned, once the database and the provider's server answer.

    Raises:
        errors.SettingsError: A bad database URL, or a role, database or password the
            server refuses.
        readiness.SchemaNotMigrated: The database lacks migrations: run docjobs migrate.
    """
    delays = retry_delays()
    down = False
    while True:
        try:
            if settings.database_url is not None:
                readiness.check(settings.database_url, transaction_pooling=settings.transaction_pooling)
            built = build(settings)
        except psycopg.OperationalError as exc:
            failure = pool.connect_failure(exc)
            if not failure.transient:
                raise failure.error() from None
            reason = f"{failure.database} is unreachable: {failure.reason}"
        except BrokerConnectionError as exc:
            reason = first_line(exc)
        else:
            if down:
                logger.info("The servers answer; starting.", extra={"action": "startup_ready"})
            return built
        down = True
        delay = next(delays)
        logger.warning(
            "%s; retrying in %s s.",
            reason[:1].upper() + reason[1:].rstrip("."),
            f"{delay:g}",
            extra={"action": "startup_retry"},
        )
        with _stopped_by_signals():
            sleep(delay)


def command_line(start: Callable[[], T]) -> T:
    """Run ``start`` in a process the ``dramatiq`` or ``periodiq`` command started.

    A docjobs error is one line on stderr and exit status 2, as under the ``docjobs``
    command, rather than the traceback those commands print for an error while they
    import the broker.
    """
    try:
        return start()
    except errors.DocjobsError as exc:
        refuse(exc)


def refuse(exc: errors.DocjobsError) -> NoReturn:
    """Print ``docjobs: error: <exc>`` on one line, redacted, and exit with status 2."""
    print(one_line(redaction.redact(f"docjobs: error: {exc}")), file=sys.stderr, flush=True)
    raise SystemExit(EXIT_REFUSED) from None


@contextlib.contextmanager
def _stopped_by_signals() -> Iterator[None]:
    """While waiting, SIGTERM and SIGINT end the process (the dramatiq command's worker
    processes otherwise only note them, and would wait on for the database)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: types.FrameType | None) -> None:
        raise SystemExit(128 + signum)

    previous = {signum: signal.signal(signum, stop) for signum in _STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
