"""The ``local`` provider: a PostgreSQL table as a Dramatiq broker."""

from docjobs.brokers.postgres.broker import PostgresBroker

__all__ = ["PostgresBroker"]
