"""Middleware dispatch that skips no-op hooks, for every docjobs broker."""

from __future__ import annotations

from typing import Any

import dramatiq
from dramatiq.middleware import MiddlewareError


class FastHooks:
    """Emit middleware hooks only to the middleware that implement them.

    Dramatiq calls every hook of every middleware for every message, most of them
    the base class's no-ops: with the default stack that is ~20 calls per enqueue
    and per processed message. Same order, same error handling, fewer calls.
    """

    middleware: list[dramatiq.Middleware]
    logger: Any

    def _implementers(self, signal: str) -> list[dramatiq.Middleware]:
        cache: dict[str, tuple[int, list[dramatiq.Middleware]]] = self.__dict__.setdefault("_hook_cache", {})
        cached = cache.get(signal)
        if cached is not None and cached[0] == len(self.middleware):
            return cached[1]
        base_hook = getattr(dramatiq.Middleware, signal, None)
        found = [m for m in self.middleware if getattr(type(m), signal, None) is not base_hook]
        cache[signal] = (len(self.middleware), found)
        return found

    def implements(self, hook: str) -> bool:
        """Whether any middleware implements ``hook`` (``before_enqueue``, say)."""
        return bool(self._implementers(hook))

    def emit_before(self, signal: str, *args: Any, **kwargs: Any) -> None:
        signal = "before_" + signal
        for middleware in self._implementers(signal):
            self._emit_to(middleware, signal, *args, **kwargs)

    def _emit_to(self, middleware: dramatiq.Middleware, hook: str, *args: Any, **kwargs: Any) -> None:
        """Call one middleware's ``hook`` as ``emit_before`` does: a refusal
        (``MiddlewareError``) goes through, any other failure is logged."""
        try:
            getattr(middleware, hook)(self, *args, **kwargs)
        except MiddlewareError:
            raise
        except Exception:
            self.logger.critical("Unexpected failure in %s of %r.", hook, middleware, exc_info=True)

    def emit_after(self, signal: str, *args: Any, **kwargs: Any) -> None:
        signal = "after_" + signal
        for middleware in reversed(self._implementers(signal)):
            try:
                getattr(middleware, signal)(self, *args, **kwargs)
            except Exception:
                self.logger.critical("Unexpected failure in %s of %r.", signal, middleware, exc_info=True)
