"""What one worker process holds of one queue: the basis of its own recovery.

A fetch moves messages into the process's ack set in Redis. If the connection
drops after Redis ran the fetch but before its answer arrived, those messages sit
in that set unknown to the process, and since the process keeps heartbeating,
maintenance never gives them back: they would be stuck while it lives. So each
process counts what it fetched and has not acknowledged yet, and after a
connection error compares that with its ack set and requeues the difference.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


@dataclass
class Holdings:
    """One queue's fetched, not yet acknowledged messages, shared by its consumers.

    ``lock`` is held around every fetch and every recovery, so a recovery never
    mistakes a fetch in progress for a lost one.
    """

    lock: threading.Lock = field(default_factory=threading.Lock)
    #: redis_message_ids fetched and not acknowledged in Redis yet.
    held: set[str] = field(default_factory=set)
    #: Acks of finished messages, not sent yet (they go with the next fetch).
    unsent_acks: list[str] = field(default_factory=list)
    #: Ids of ended jobs sent with the caller's id, whose id keys' expiry goes with those acks.
    unsent_ends: list[str] = field(default_factory=list)
    #: A fetch may have run without its answer reaching us.
    suspect: bool = False
    #: Due times (epoch ms) of delayed messages handed out and not acked yet, by message id:
    #: Dramatiq's consumer thread moves them to their queue only between two fetches.
    etas: dict[str, int] = field(default_factory=dict)

    def seconds_to_next_eta(self, now_ms: int) -> float | None:
        """How long until the earliest held delayed message is due, if one is held."""
        etas = list(self.etas.values())
        return max(min(etas) - now_ms, 0) / 1000 if etas else None

    def acknowledged(self, message_ids: list[str]) -> None:
        """Redis has taken these acks (or nacks, or requeues)."""
        self.held.difference_update(message_ids)
