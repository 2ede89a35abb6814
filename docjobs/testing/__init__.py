"""Helpers for testing code that uses docjobs: real servers, started on free ports."""

from docjobs.testing.services import FAST_SETTINGS, PostgresServer, RedisServer

__all__ = ["FAST_SETTINGS", "PostgresServer", "RedisServer"]
