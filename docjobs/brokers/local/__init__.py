"""The ``local`` provider: a PostgreSQL table as a Dramatiq broker."""

from docjobs.brokers.local.broker import LocalBroker

__all__ = ["LocalBroker"]
