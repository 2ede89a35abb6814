"""Job log writes that Inngest's replays do not repeat.

Inngest runs a function with steps by calling it again for each new step; every call
runs the function's body from the top, returning the finished steps' stored results.
A ``log_line`` before a finished step would be written once per call. The SDK knows a
call is past its replay when it has reached every stored step (its memos are used up:
that is when it lets its own step-aware ``ctx.logger`` speak); this reads the same.

The SDK's flag for its logger is no help here: it is a context variable set in the
thread pool's threads, where it stays on after the first call.
"""

from __future__ import annotations

from typing import Any

import inngest

from docjobs import joblogs


def replaying(ctx: inngest.ContextSync) -> bool:
    """Whether the call has stored steps ahead it has not reached yet (it is replaying).

    Reads the SDK's step memos (``inngest`` 0.5, pinned); with another layout it says
    ``False``, and lines before a step may then repeat on replays (the tests would show it).
    """
    memos: Any = getattr(getattr(ctx.step, "_execution", None), "_memos", None)
    size = getattr(memos, "size", 0)
    return isinstance(size, int) and size > 0


class ReplaySkipping:
    """A log sink that drops what the function writes while Inngest replays it.

    Args:
        sink: Where lines and progress go once the call runs new work.
        ctx: The call's context.
    """

    def __init__(self, sink: joblogs.LogSink, ctx: inngest.ContextSync) -> None:
        self.sink = sink
        self.ctx = ctx

    def append(self, job_id: str, attempt: int, line: str) -> None:
        if not replaying(self.ctx):
            self.sink.append(job_id, attempt, line)

    def set_progress(self, job_id: str, progress_json: str) -> None:
        if not replaying(self.ctx):
            self.sink.set_progress(job_id, progress_json)
