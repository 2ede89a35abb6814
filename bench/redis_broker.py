"""The baseline broker for ``dramatiq bench.redis_broker bench.actors_dramatiq``: stock RedisBroker."""

from __future__ import annotations

import os

import dramatiq
from dramatiq.brokers.redis import RedisBroker

broker = RedisBroker(url=os.environ["BENCH_REDIS_URL"])
dramatiq.set_broker(broker)
