"""Log lines and progress of the running job, shown live on the board's job page.

    @docjobs.actor("app.import-contacts")
    def import_contacts(*, upload_id: int) -> None:
        rows = load(upload_id)
        for done, row in enumerate(rows, 1):
            save(row)
            docjobs.set_progress(done * 100 / len(rows))
        docjobs.log_line(f"imported {len(rows)} contacts")

BullMQ's ``job.log`` and ``job.updateProgress``, on every provider: the lines and the
progress are kept with the job's history in PostgreSQL and deleted with it by retention.

- A line longer than :data:`MAX_LINE_CHARS` is cut there (its end says how much was cut);
  a job keeps its newest :data:`MAX_LINES_PER_JOB` lines, older ones are dropped.
- Progress is a number from 0 to 100 or a small JSON object (at most
  :data:`MAX_PROGRESS_BYTES`); anything else raises :class:`~docjobs.errors.JobLogError` at once.
- Outside a running job both raise :class:`~docjobs.errors.JobLogOutsideJob`, as ``run_task``
  does: a line written from a thread the job started (which does not carry the job) would
  otherwise vanish without a word.
- Recording is best effort: when PostgreSQL is down the line is dropped with a warning and
  the job goes on. Where there is nowhere to keep them (a provider without a database: the
  stub, inngest without one), they are dropped too: there is no board to show them.

The writer is the running broker's (``brokers/joblogs.py``): it puts itself in :data:`sink`
in the threads that run jobs, so this module reaches for no runtime, like ``tasks``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any, Protocol

import orjson
from dramatiq.middleware import CurrentMessage

from docjobs import errors, strictjson

#: The longest line kept; the rest is cut off.
MAX_LINE_CHARS = 2_000
#: Lines a job keeps: each new line past these drops the oldest.
MAX_LINES_PER_JOB = 1_000
#: The longest progress object, as JSON.
MAX_PROGRESS_BYTES = 1_024
#: The deepest progress object.
MAX_PROGRESS_DEPTH = 4

#: What a stored line never holds: control characters but tab and newline, and the
#: bidirectional embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069).
_UNSHOWN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")

#: A progress value as :func:`set_progress` takes it.
Progress = int | float | Mapping[str, Any]


class LogSink(Protocol):
    """Where the running job's lines and progress go (``brokers.joblogs.JobLogWriter``).

    Neither method raises for a database failure: the job must not fail for its log.
    """

    def append(self, job_id: str, attempt: int, line: str) -> None:
        """Append ``line`` to the job's log."""
        ...

    def set_progress(self, job_id: str, progress_json: str) -> None:
        """Set the job's progress to ``progress_json``."""
        ...


#: The log writer of the broker running the job in this context; ``None`` outside
#: a worker thread, or when the provider has no database.
sink: ContextVar[LogSink | None] = ContextVar("docjobs_log_sink", default=None)


def log_line(line: str) -> None:
    """Append a line to the running job's log, shown on its board page.

    Args:
        line: The text; cut at :data:`MAX_LINE_CHARS` characters.

    Raises:
        errors.JobLogError: ``line`` is not a string.
        errors.JobLogOutsideJob: Not called from a running job.

    .. versionadded:: 0.2.0
    """
    text = clean_line(line)
    message = _current_message("log_line")
    writer = sink.get()
    if writer is not None:
        writer.append(message.message_id, _attempt(message), text)


def set_progress(value: Progress) -> None:
    """Set the running job's progress, shown on its board page (as a bar when it is a number).

    Args:
        value: A number from 0 to 100, or a JSON object of at most :data:`MAX_PROGRESS_BYTES`
            (``{"page": 3, "pages": 50}``).

    Raises:
        errors.JobLogError: ``value`` is neither (named in the message).
        errors.JobLogOutsideJob: Not called from a running job.

    .. versionadded:: 0.2.0
    """
    progress_json = progress_text(value)
    message = _current_message("set_progress")
    writer = sink.get()
    if writer is not None:
        writer.set_progress(message.message_id, progress_json)


def clean_line(line: str) -> str:
    """``line`` as it is stored: cut to :data:`MAX_LINE_CHARS`, with what PostgreSQL cannot keep replaced.

    Raises:
        errors.JobLogError: ``line`` is not a string.
    """
    if not isinstance(line, str):
        raise errors.JobLogError(f"log_line takes a string, not {type(line).__name__}")
    if len(line) > MAX_LINE_CHARS:
        cut = len(line) - MAX_LINE_CHARS
        line = f"{line[:MAX_LINE_CHARS]}… ({cut} more characters cut)"
    if _UNSHOWN.search(line):
        # Text columns cannot hold NUL; other control characters (a terminal's escapes) and
        # bidirectional overrides would make a line on the board read as something else.
        line = _UNSHOWN.sub("\ufffd", line)
    if not line.isascii():  # a lone surrogate cannot be encoded for PostgreSQL
        line = line.encode("utf-8", "replace").decode("utf-8")
    return line


def progress_text(value: Progress) -> str:
    """``value`` as the JSON text stored, once checked.

    Raises:
        errors.JobLogError: Not a number from 0 to 100 nor a small JSON object.
    """
    if isinstance(value, bool):  # an int to Python, never a progress
        raise errors.JobLogError(f"progress must be a number from 0 to 100 or a JSON object, not {value!r}")
    if isinstance(value, int | float):
        if not (math.isfinite(value) and 0 <= value <= 100):
            raise errors.JobLogError(f"progress must be a number from 0 to 100, not {value!r}")
        return orjson.dumps(value).decode()
    if not isinstance(value, Mapping):
        raise errors.JobLogError(
            f"progress must be a number from 0 to 100 or a JSON object, not {type(value).__name__}"
        )
    try:
        strictjson.check(dict(value), max_depth=MAX_PROGRESS_DEPTH)
        encoded = orjson.dumps(dict(value))
    except (strictjson.JsonRefused, orjson.JSONEncodeError, TypeError) as exc:
        raise errors.JobLogError(f"progress is not a JSON object docjobs can keep: {exc}") from None
    if len(encoded) > MAX_PROGRESS_BYTES:
        raise errors.JobLogError(
            f"progress is {len(encoded)} bytes as JSON, over the limit of {MAX_PROGRESS_BYTES}"
        )
    return encoded.decode()


def _current_message(caller: str) -> Any:
    message = CurrentMessage.get_current_message()
    if message is None:
        raise errors.JobLogOutsideJob(f"{caller}() was called outside a running job")
    return message


def _attempt(message: Any) -> int:
    """The attempt running, from 1 (``retries`` counts the failed ones before it)."""
    return int(message.options.get("retries", 0) or 0) + 1
