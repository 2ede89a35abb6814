"""Flow control's state in Redis: the bullmq provider's ``FlowStore``.

Keys live under the provider's namespace (``$namespace:flow:...``) and expire on
their own. The two scripts make a take atomic; a debounced key's latest send is a
key holding when it was sent and its job id (``<ms>:<id>``).
"""

from __future__ import annotations

import math

import redis

from docjobs.brokers.bullmq.commands import script_source
from docjobs.flow.store import WindowKind


class RedisFlow:
    """Slots, windows and debounced sends in Redis."""

    def __init__(self, client: redis.Redis, namespace: str) -> None:
        self.client = client
        self.prefix = f"{namespace}:flow"
        self._slot = client.register_script(script_source("flow_slot.lua"))
        self._window = client.register_script(script_source("flow_window.lua"))
        self._note = client.register_script(script_source("flow_note.lua"))

    def take_slot(self, job: str, key: str, holder: str, *, limit: int, ttl_s: float) -> bool:
        taken = self._slot(keys=[self._slots(job, key)], args=[holder, limit, _ms(ttl_s)])
        return bool(taken)

    def release_slot(self, job: str, key: str, holder: str) -> None:
        self.client.zrem(self._slots(job, key), holder)

    def take_window(
        self, job: str, kind: WindowKind, key: str, *, limit: int, period_s: float
    ) -> float | None:
        taken, wait_ms = self._window(keys=[f"{self.prefix}:{kind}:{job}:{key}"], args=[limit, _ms(period_s)])
        return None if taken else int(wait_ms) / 1000

    def note_send(self, job: str, key: str, job_id: str, *, sent_ms: int, ttl_s: float) -> None:
        self._note(keys=[self._latest(job, key)], args=[sent_ms, job_id, _ms(ttl_s)])

    def superseded(self, job: str, key: str, job_id: str, *, sent_ms: int) -> bool:
        # Noted before the send: a send that then failed would supersede this one (the
        # sender saw its error). Redis keeps no row to check, as PostgreSQL does.
        latest = self.client.get(self._latest(job, key))
        if latest is None:
            return False
        text = latest.decode() if isinstance(latest, bytes) else str(latest)
        latest_ms, _, latest_id = text.partition(":")
        return latest_id != job_id and int(latest_ms) >= sent_ms

    def _slots(self, job: str, key: str) -> str:
        return f"{self.prefix}:slot:{job}:{key}"

    def _latest(self, job: str, key: str) -> str:
        return f"{self.prefix}:debounce:{job}:{key}"


def _ms(seconds: float) -> int:
    return max(math.ceil(seconds * 1000), 1)
