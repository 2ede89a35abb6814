"""The error a local send, claim or outcome write raises when PostgreSQL does not answer."""

from __future__ import annotations

import psycopg
from dramatiq.errors import BrokerConnectionError

from docjobs.logging import first_line

UNREACHABLE = "the database is unreachable"


def database_unreachable(exc: psycopg.OperationalError) -> BrokerConnectionError:
    """Dramatiq's connection error for ``exc``, in one line that names the database.

    libpq's text runs to three lines ("server closed the connection unexpectedly" and its
    hints), and the pool's time-out ("couldn't get a connection after 10.00 sec") names
    no server: an app's log or a sender's traceback showed either (outside trial, issue 21).
    """
    line = first_line(exc)
    if line.startswith(UNREACHABLE):  # raised by docjobs already, under a connection error
        return BrokerConnectionError(line)
    return BrokerConnectionError(f"{UNREACHABLE}: {line}")
