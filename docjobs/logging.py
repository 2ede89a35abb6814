"""Log configuration for the command line. Library code only calls ``logging.getLogger``.

Two rules hold for every line a docjobs process writes, whatever logged it
(docjobs, Dramatiq, uvicorn, psycopg's pool, a thread that died):

- secrets are masked (:func:`docjobs.redaction.redact`), tracebacks included;
- a message is one line: control characters in it or in a field (a ``%0A`` in a
  request path, a CR in a driver's error) are written as escapes, so nobody can
  forge a line. Tracebacks keep their own line breaks, after the message.

:class:`SafeRecords` enforces both on a handler. ``configure`` puts it on the
command line's handler; the runtime puts it on whatever handlers the process
already has when it is installed (the ``dramatiq`` command's, a host app's).

Every ``docjobs`` command writes one format (:data:`LOG_FORMAT`): ``docjobs worker``
too, whose Dramatiq processes keep the handler ``configure`` made (see
``docjobs.cli.dramatiq_worker``). A refusal docjobs raises while a module is imported
(a job id declared twice) is logged as its one-line message, without a traceback:
the message names the cause, and the stack would only show docjobs' own check.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import types
from typing import TextIO

from docjobs import errors, redaction

#: Structured fields appended to a line as ``key=value`` when a record carries them.
STRUCTURED_FIELDS = ("action", "message_id", "actor", "status", "duration_ms", "reason", "schedule", "slot")

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
#: What :func:`visible` escapes: the same, but the tab and line break a block of text keeps.
_UNSEEN = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_traceback_formatter = logging.Formatter()


def one_line(text: str) -> str:
    """``text`` with line breaks and other control characters escaped (``\\n``, ``\\x00``)."""
    return _CONTROL.sub(lambda m: repr(m[0])[1:-1], text)


def visible(text: str) -> str:
    """``text`` as a reader should see it: terminal escapes, other control characters and
    bidirectional overrides written as escapes (``\x1b``, ``\u202e``); tabs and line breaks kept."""
    return _UNSEEN.sub(lambda m: repr(m[0])[1:-1], text) if _UNSEEN.search(text) else text


def first_line(exc: BaseException) -> str:
    """The first line of ``exc``'s message (libpq's reason without its hints), or its type's name."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class SafeRecords(logging.Filter):
    """Masks secrets and escapes control characters in each record, before any formatter sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_docjobs_safe", False):  # several handlers share a record
            return True
        record.msg = one_line(redaction.redact(record.getMessage()))
        record.args = None
        refusal = record.exc_info[1] if record.exc_info else None
        if _is_import_refusal(refusal):
            record.msg = f"{record.msg} {type(refusal).__name__}: {one_line(redaction.redact(str(refusal)))}"
            record.exc_info = None
            record.exc_text = None
        for name in STRUCTURED_FIELDS:
            value = getattr(record, name, None)
            if isinstance(value, str):  # numbers hold no secret and no line break
                setattr(record, name, one_line(redaction.redact(value)))
        if record.exc_info and not record.exc_text:
            record.exc_text = _traceback_formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = visible(redaction.redact(record.exc_text))
        if record.stack_info:
            record.stack_info = redaction.redact(record.stack_info)
        record._docjobs_safe = True
        return True


def _is_import_refusal(exc: BaseException | None) -> bool:
    """docjobs' refusal of a module being imported (an ``ImportError`` that is a ``DocjobsError``)."""
    return isinstance(exc, errors.DocjobsError) and isinstance(exc, ImportError)


class StderrHandler(logging.StreamHandler[TextIO]):
    """Writes each record to whatever ``sys.stderr`` is then.

    Dramatiq points a worker process's ``sys.stderr`` at the pipe its parent reads, so
    that lines of several processes never interleave: a handler inherited from the
    parent writes there too, rather than to the stream it was made with.
    """

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr  # under the handler's lock: handle() holds it
        super().emit(record)


class KeyValueFormatter(logging.Formatter):
    """The usual line, then the record's structured fields as ``key=value`` pairs."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = [f"{name}={getattr(record, name)}" for name in STRUCTURED_FIELDS if hasattr(record, name)]
        if not fields:
            return line
        first, newline, rest = line.partition("\n")  # fields go on the message's line, not the traceback's
        return f"{first} [{' '.join(fields)}]{newline}{rest}"


def protect(logger: logging.Logger | None = None) -> None:
    """Put :class:`SafeRecords` on every handler of ``logger`` (the root logger by default)."""
    for handler in (logger or logging.getLogger()).handlers:
        if not any(isinstance(f, SafeRecords) for f in handler.filters):
            handler.addFilter(SafeRecords())


def configure(level: str = "INFO") -> None:
    """Send docjobs' (and Dramatiq's) logs to stderr, one line each; uncaught errors too."""
    handler = StderrHandler()
    handler.setFormatter(KeyValueFormatter(LOG_FORMAT, datefmt="%H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    protect(root)
    # Their per-request (or per-import) lines drown the jobs' own; warnings still show.
    for noisy in ("httpx", "httpcore", "uvicorn.access", "pikepdf._core", "mail.log"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # Python prints an uncaught exception's traceback itself, past every handler.
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread


def _log_uncaught(kind: type[BaseException], exc: BaseException, tb: types.TracebackType | None) -> None:
    logging.getLogger("docjobs").critical("Uncaught %s", kind.__name__, exc_info=(kind, exc, tb))


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit or args.exc_value is None:
        return
    name = args.thread.name if args.thread is not None else "a thread"
    logging.getLogger("docjobs").error(
        "Uncaught %s in %s",
        args.exc_type.__name__,
        name,
        exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
    )
