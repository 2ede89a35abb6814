"""The Redis commands of the bullmq provider, each written out.

Dramatiq's ``RedisBroker`` reaches its dispatch script through ``__getattr__``
(``do_fetch``, ``do_nack``, ...); here every command the broker, its consumers and
its keeper send is a typed method of :class:`RedisCommands`, so a consumer is handed
these commands rather than the whole broker.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from importlib import resources
from typing import Any

import redis
from dramatiq.common import current_millis, dq_name, q_name
from redis.client import Pipeline
from redis.commands.core import Script

from docjobs.brokers.bullmq.holdings import Holdings

#: The most due messages one call of ``move_due.lua`` moves (Lua's ``unpack`` has a limit).
MOVE_CHUNK = 1000
#: The message option of a job sent with an id of the caller's: its id holds a key in Redis.
DEDUPLICATE_OPTION = "deduplicate"


def script_source(name: str) -> bytes:
    """One of the provider's Lua scripts."""
    return resources.files("docjobs.brokers.bullmq").joinpath(name).read_bytes()


class RedisCommands:
    """The provider's Redis commands: Dramatiq's dispatch script and docjobs' own scripts.

    Args:
        client: The client with restart retries.
        fetch_client: The client without them, for fetches (a fetch run twice would
            strand the first answer's messages; see ``holdings``).
        namespace: The key prefix.
        broker_id: Names this process's ack sets.
        dispatch: Dramatiq's dispatch script.
        heartbeat_timeout_ms: A worker silent this long is dead.
        dead_message_ttl_ms: How long dead messages are kept.
        max_unpack_size: The most arguments a script may unpack at once (Dramatiq's).
        doorbell_channel: Where a move of due messages rings.
        id_key_prefix: Before a job's id, the key it holds while its id is taken.
        id_ttl_ms: How long an ended job's id stays taken.
        load_scripts: Puts every script in Redis's script cache again (after a restart).
    """

    def __init__(
        self,
        client: redis.Redis,
        fetch_client: redis.Redis,
        *,
        namespace: str,
        broker_id: str,
        dispatch: Script,
        heartbeat_timeout_ms: int,
        dead_message_ttl_ms: int,
        max_unpack_size: Callable[[], int],
        doorbell_channel: str,
        id_key_prefix: str,
        id_ttl_ms: int,
        load_scripts: Callable[[], None],
    ) -> None:
        self.client = client
        self.fetch_client = fetch_client
        self.namespace = namespace
        self.broker_id = broker_id
        self.dispatch = dispatch
        self.heartbeat_timeout_ms = heartbeat_timeout_ms
        self.dead_message_ttl_ms = dead_message_ttl_ms
        self.max_unpack_size = max_unpack_size
        self.doorbell_channel = doorbell_channel
        self.id_key_prefix = id_key_prefix
        self.id_ttl_ms = id_ttl_ms
        self.load_scripts = load_scripts
        self.ack_script = client.register_script(script_source("ack_many.lua"))
        self.move_due_script = client.register_script(script_source("move_due.lua"))
        self.remove_script = client.register_script(script_source("remove.lua"))
        #: The set of queues paused on the board.
        self.paused_key = f"{namespace}:__paused__"

    def run_pipeline(self, build: Callable[[Pipeline], None], *, fetching: bool = False) -> list[Any]:
        """Run the commands ``build`` adds to a pipeline, in one round trip.

        Scripts go by their digest (redis-py would ask ``SCRIPT EXISTS`` first, a
        second round trip). A Redis that lost its script cache (a restart) answers
        NOSCRIPT: the scripts are loaded again and only the commands refused are run
        again, since the others (a fetch, say) already took effect.

        Args:
            build: Adds the commands to the pipeline it is given.
            fetching: Use the client without restart retries (a fetch is among them).
        """
        client = self.fetch_client if fetching else self.client
        pipeline = client.pipeline(transaction=False)
        build(pipeline)
        commands = list(pipeline.command_stack)
        results: list[Any] = pipeline.execute(raise_on_error=False)
        refused = [
            index
            for index, result in enumerate(results)
            if isinstance(result, redis.exceptions.NoScriptError)
        ]
        if refused:
            self.load_scripts()
            again = client.pipeline(transaction=False)
            for index in refused:
                args, options = commands[index]
                again.execute_command(*args, **options)
            for index, result in zip(refused, again.execute(raise_on_error=False), strict=True):
                results[index] = result
        for result in results:
            if isinstance(result, Exception):
                raise result
        return results

    def dispatch_to(
        self, pipeline: Pipeline, command: str, queue_name: str, *args: Any, maintenance: bool = False
    ) -> None:
        """Add a call of Dramatiq's dispatch script to ``pipeline``."""
        pipeline.evalsha(
            self.dispatch.sha,
            1,
            self.namespace,
            command,
            current_millis(),
            queue_name,
            self.broker_id,
            self.heartbeat_timeout_ms,
            self.dead_message_ttl_ms,
            int(maintenance),
            self.max_unpack_size(),
            *args,
        )

    def nack(self, queue_name: str, message_id: str) -> None:
        """Move a fetched message to the dead-letter set (Dramatiq's ``do_nack``)."""
        self.run_pipeline(lambda pipeline: self.dispatch_to(pipeline, "nack", queue_name, message_id))

    def requeue(self, queue_name: str, message_ids: Sequence[str]) -> None:
        """Put fetched messages back at the front of their queue (Dramatiq's ``do_requeue``)."""
        self.run_pipeline(lambda pipeline: self.dispatch_to(pipeline, "requeue", queue_name, *message_ids))

    def ack_to(self, pipeline: Pipeline, queue_name: str, message_ids: list[str]) -> None:
        """Add the acknowledgement of ``message_ids`` (fetched from ``queue_name``) to ``pipeline``."""
        pipeline.evalsha(
            self.ack_script.sha,
            2,
            f"{self.namespace}:__acks__.{self.broker_id}.{queue_name}",
            f"{self.namespace}:{queue_name}.msgs",
            *message_ids,
        )

    def id_key(self, job_id: str) -> str:
        """The key a job sent with the caller's id holds while its id is taken."""
        return self.id_key_prefix + job_id

    def holds_id_key(self, options: dict[str, Any]) -> bool:
        """Whether a message with these options holds its id's key until it ends (sent with ``id=``)."""
        return bool(options.get(DEDUPLICATE_OPTION))

    def expire_ids_to(self, pipeline: Pipeline, job_ids: Sequence[str]) -> None:
        """Add to ``pipeline`` the expiry of these ended jobs' id keys, after the retention period."""
        for job_id in job_ids:
            pipeline.pexpire(self.id_key(job_id), self.id_ttl_ms)

    def move_due_to(self, pipeline: Pipeline, queue_name: str, extra: Sequence[str] = ()) -> None:
        """Add the move of ``queue_name``'s due scheduled messages (and ``extra`` ones) to ``pipeline``.

        Its answer is ``[moved, next due time in epoch ms or -1]``.
        """
        queue_key = f"{self.namespace}:{q_name(queue_name)}"
        keys = [f"{queue_key}.delayed", queue_key]
        pipeline.evalsha(
            self.move_due_script.sha,
            2,
            *keys,
            self.doorbell_channel,
            q_name(queue_name),
            current_millis(),
            MOVE_CHUNK,
            *extra,
        )

    def requeue_unheld(self, queue_name: str, holdings: Holdings) -> int:
        """Give back the messages of this process's ack set that it does not hold.

        Call with ``holdings.lock`` held. Returns how many went back to the queue.
        """
        acks_key = f"{self.namespace}:__acks__.{self.broker_id}.{queue_name}"
        members: set[bytes] = self.fetch_client.smembers(acks_key)  # type: ignore[assignment]
        lost = sorted(member.decode() for member in members if member.decode() not in holdings.held)
        if lost:
            self.run_pipeline(
                lambda pipeline: self.dispatch_to(pipeline, "requeue", queue_name, *lost), fetching=True
            )
        return len(lost)

    def waiting_counts(self, queue_names: Sequence[str]) -> list[int]:
        """How many messages wait in each queue's list, in one round trip."""
        pipe = self.client.pipeline(transaction=False)
        for name in queue_names:
            pipe.llen(f"{self.namespace}:{q_name(name)}")
        return [int(count) for count in pipe.execute()]

    def remove_waiting(self, queue_name: str, redis_message_id: str) -> bool:
        """Take a message no worker has fetched out of its queue (or delay queue).

        Returns:
            ``False`` when it was not waiting: a worker holds it, or it is gone.
        """
        queue_key = f"{self.namespace}:{q_name(queue_name)}"
        delay_key = f"{self.namespace}:{dq_name(q_name(queue_name))}"
        keys = [queue_key, f"{queue_key}.msgs", delay_key, f"{delay_key}.msgs", f"{queue_key}.delayed"]
        args: list[str | int] = [redis_message_id, self.id_key_prefix, self.id_ttl_ms]
        return bool(self.remove_script(keys=keys, args=args))

    def promote(self, queue_name: str, redis_message_id: str) -> bool:
        """Move a scheduled message to the end of its queue now, whatever its due time.

        Returns:
            ``False`` when it was not scheduled: it is due and moved already, or gone.
        """
        results = self.run_pipeline(
            lambda pipeline: self.move_due_to(pipeline, queue_name, [redis_message_id])
        )
        moved, _ = results[0]
        return int(moved) == 1

    def maintain(self, queues: Iterable[str]) -> frozenset[str]:
        """Heartbeat, give ``queues`` back the jobs of dead workers; returns the paused queues."""
        declared = sorted(queues)

        def build(pipeline: Pipeline) -> None:
            for queue_name in declared:
                for name in (queue_name, dq_name(queue_name)):
                    # "heartbeat" is no command of the script: it only beats and maintains.
                    self.dispatch_to(pipeline, "heartbeat", name, maintenance=True)
            if not declared:
                self.dispatch_to(pipeline, "heartbeat", "default")
            pipeline.smembers(self.paused_key)

        results = self.run_pipeline(build)
        return frozenset(member.decode() for member in results[-1])

    def set_paused(self, queue_name: str, paused: bool) -> None:
        """Add ``queue_name`` to the paused set, or take it out."""
        if paused:
            self.client.sadd(self.paused_key, queue_name)
        else:
            self.client.srem(self.paused_key, queue_name)
