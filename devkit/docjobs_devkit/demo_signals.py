"""SIGINT, SIGTERM and SIGHUP stop the demo as Ctrl-C does, and only once.

Python's default for SIGTERM and SIGHUP is to die on the spot: nothing the demo
started (the embedded PostgreSQL above all, which ``pg_ctl`` detached) would be
stopped. Here each of the three raises :class:`StopRequested` in the main thread,
so the demo's ``ExitStack`` stops everything in order. Once that stopping has
begun, further signals are noted and ignored: a second Ctrl-C must not cut the
order short (the pool closed under the worker still removing its row, PostgreSQL
stopped under both). Every wait of the stopping has a deadline.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from types import FrameType, TracebackType
from typing import Any

#: What stops the demo; a signal ignored when the demo started (``nohup``, ``&``) stays ignored.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class StopRequested(KeyboardInterrupt):
    """A signal asked the demo to stop.

    A ``KeyboardInterrupt``, so what already handles Ctrl-C (psycopg cancels the
    running query) handles it too.

    Args:
        signum: The signal's number.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def name(self) -> str:
        """The signal's name, e.g. ``SIGTERM``."""
        return signal.Signals(self.signum).name


class StopSignals:
    """While entered, :data:`STOP_SIGNALS` raise :class:`StopRequested` once, then are ignored."""

    def __init__(self) -> None:
        self._stopping = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():  # only it may set handlers
            for signum in STOP_SIGNALS:
                if signal.getsignal(signum) is not signal.SIG_IGN:
                    self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def hold(self) -> None:
        """From now on, the demo is stopping: signals no longer interrupt it."""
        self._stopping = True

    @contextlib.contextmanager
    def held_on_exit(self) -> Iterator[None]:
        """Call :meth:`hold` when the block is left, however it is left."""
        try:
            yield
        finally:
            self.hold()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self._stopping:
            # os.write, not print: the main thread may be inside print right now.
            with contextlib.suppress(OSError):
                os.write(sys.stderr.fileno(), b"demo: already stopping; it waits for running jobs\n")
            return
        self._stopping = True
        raise StopRequested(signum)
