"""``docjobs health worker`` on the bullmq provider: some worker heartbeats in Redis.

The heartbeats live in Redis (Dramatiq's ``<prefix>:__heartbeats__``), keyed by a
random broker id that names no host, so the check can only ask that some worker
beat within the heartbeat timeout.
"""

from __future__ import annotations

import time
from typing import Any

import redis

from docjobs.settings import Settings

#: How long each network step of the check may take.
CHECK_TIMEOUT_SECONDS = 5.0


def check_worker_redis(settings: Settings) -> tuple[bool, str]:
    """Whether some worker heartbeat in Redis within the heartbeat timeout, and the line that says so."""
    assert settings.redis_url is not None  # Settings requires it on bullmq
    client: Any = redis.Redis.from_url(
        settings.redis_url, socket_timeout=CHECK_TIMEOUT_SECONDS, socket_connect_timeout=CHECK_TIMEOUT_SECONDS
    )
    try:
        newest = client.zrevrange(f"{settings.redis_prefix}:__heartbeats__", 0, 0, withscores=True)
    except redis.RedisError as exc:
        return False, f"worker: Redis does not answer ({type(exc).__name__})"
    finally:
        client.close()
    if not newest:
        return False, "worker: no worker heartbeat in Redis"
    age = time.time() - float(newest[0][1]) / 1000
    if age > settings.lease_seconds:
        return False, f"worker: the newest worker heartbeat in Redis is {age:.0f} s old"
    return True, f"worker: a worker heartbeat in Redis {age:.0f} s ago"
