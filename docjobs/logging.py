"""Log configuration for the command line. Library code only calls ``logging.getLogger``."""

from __future__ import annotations

import logging
import sys

#: Structured fields appended to a line as ``key=value`` when a record carries them.
STRUCTURED_FIELDS = ("action", "message_id", "actor", "status", "duration_ms", "reason", "schedule", "slot")

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


class KeyValueFormatter(logging.Formatter):
    """The usual line, then the record's structured fields as ``key=value`` pairs."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = [f"{name}={getattr(record, name)}" for name in STRUCTURED_FIELDS if hasattr(record, name)]
        return f"{line} [{' '.join(fields)}]" if fields else line


def configure(level: str = "INFO") -> None:
    """Send docjobs' (and Dramatiq's) logs to stderr, one line each."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(KeyValueFormatter(LOG_FORMAT, datefmt="%H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Their per-request (or per-import) lines drown the jobs' own; warnings still show.
    for noisy in ("httpx", "httpcore", "uvicorn.access", "pikepdf._core", "mail.log"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
