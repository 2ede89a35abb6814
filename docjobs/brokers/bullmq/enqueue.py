"""Putting messages in their Redis queues: docjobs' enqueue and schedule scripts.

A message is prepared as Dramatiq's Redis broker prepares it (a Redis id of its
own, a due time if delayed), then pushed as an :data:`Entry`: many in one round
trip, each script call ringing its queue's doorbell. A message sent with the
caller's id goes in only if it takes its id's key (deduplication, atomically in
the script).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import uuid4

import redis
from dramatiq.common import current_millis, dq_name, q_name
from dramatiq.message import Message
from redis.client import Pipeline
from redis.commands.core import Script

from docjobs.brokers.bullmq.commands import DEDUPLICATE_OPTION, RedisCommands, script_source
from docjobs.db.store import Row

#: Messages per enqueue script call: a bigger batch is split, so Redis never blocks long.
ENQUEUE_CHUNK = 1000

#: What ``push`` sends of one message: Redis id, queue, data, due time, id key ("" for none).
Entry = tuple[str, str, bytes, int | None, str]


class QueueWriter:
    """Pushes prepared messages to their queues (or schedules them).

    Args:
        client: The client with restart retries.
        commands: The provider's other commands (pipelines, id keys, loading the scripts).
        namespace: The key prefix.
        doorbell_channel: Where each push rings its queue.
    """

    def __init__(
        self, client: redis.Redis, commands: RedisCommands, *, namespace: str, doorbell_channel: str
    ) -> None:
        self.client = client
        self.commands = commands
        self.namespace = namespace
        self.doorbell_channel = doorbell_channel
        self.enqueue_script = client.register_script(script_source("enqueue.lua"))
        self.schedule_script = client.register_script(script_source("schedule.lua"))

    @property
    def scripts(self) -> tuple[Script, ...]:
        """The scripts to load into Redis's script cache."""
        return self.enqueue_script, self.schedule_script

    @staticmethod
    def prepare(message: Message[Any], delay: int | None, deduplicate: bool) -> Message[Any]:
        """Dramatiq's preparation: a Redis id of its own (a retry is a new entry), a due time if delayed.

        A delayed message keeps its queue's name (it is scheduled, not put on the
        delay queue); its ``eta`` is dropped by the consumer that runs it. A message
        sent with the caller's id is marked, so its outbox row, its end and its
        removal find its id's key.
        """
        options: dict[str, Any] = {"redis_message_id": str(uuid4())}
        if deduplicate:
            options[DEDUPLICATE_OPTION] = True
        if delay is not None:
            options["eta"] = current_millis() + delay
        return message.copy(queue_name=q_name(message.queue_name), options=options)

    def entry(self, message: Message[Any], *, check_id: bool, data: bytes | None = None) -> Entry:
        """What ``push`` sends of a prepared message; with ``check_id``, only if it takes its id's key.

        A retry keeps the mark of its first send, but is not checked: it is the job
        that holds the key.
        """
        eta = message.options.get("eta")
        return (
            message.options["redis_message_id"],
            message.queue_name,
            message.encode() if data is None else data,
            None if eta is None else int(eta),
            self.commands.id_key(message.message_id) if check_id else "",
        )

    def push(self, entries: Sequence[Entry]) -> set[str]:
        """Enqueue (or schedule, with a due time) each entry, in one round trip.

        One message (a plain send) is one EVALSHA; more go in a pipeline of one
        script call per queue and chunk. Each call rings its queue's doorbell.

        Returns:
            The Redis ids of the messages dropped because their id's key was taken.
        """
        calls: list[list[Any]] = []
        by_queue: dict[tuple[str, bool], list[Any]] = {}
        for message_id, queue_name, data, eta, id_key in entries:
            if eta is None:
                by_queue.setdefault((queue_name, False), []).extend((message_id, data, id_key))
            else:
                by_queue.setdefault((queue_name, True), []).extend((message_id, data, eta, id_key))
        for (queue_name, delayed), items in by_queue.items():
            step = (4 if delayed else 3) * ENQUEUE_CHUNK
            for start in range(0, len(items), step):
                calls.append(self._call(queue_name, delayed, items[start : start + step]))
        if len(calls) == 1:
            try:
                results = [self.client.evalsha(*calls[0])]
            except redis.exceptions.NoScriptError:  # refused, so not run: load and run it
                self.commands.load_scripts()
                results = [self.client.evalsha(*calls[0])]
        else:

            def build(pipeline: Pipeline) -> None:
                for call in calls:
                    pipeline.evalsha(*call)

            results = self.commands.run_pipeline(build)
        return {skipped.decode() for result in results for skipped in result}

    def push_rows(self, rows: list[Row]) -> list[tuple[Message[Any], int | None]]:
        """Push outbox rows; returns the messages enqueued, each with its delay in ms."""
        messages = [Message.decode(bytes(row["data"])) for row in rows]
        # Rows written before delayed jobs were scheduled name the delay queue: same thing.
        # Retries are never sent through the outbox: a marked message there is a first send.
        skipped = self.push(
            [
                (row["id"], q_name(row["queue"]))
                + self.entry(
                    message, check_id=bool(message.options.get(DEDUPLICATE_OPTION)), data=bytes(row["data"])
                )[2:]
                for row, message in zip(rows, messages, strict=True)
            ]
        )
        now = current_millis()
        return [
            (message, max(int(eta) - now, 0) if (eta := message.options.get("eta")) is not None else None)
            for row, message in zip(rows, messages, strict=True)
            if row["id"] not in skipped
        ]

    def _call(self, queue_name: str, delayed: bool, items: list[Any]) -> list[Any]:
        queue_key = f"{self.namespace}:{queue_name}"
        channel = self.doorbell_channel
        if delayed:  # the delay queue's consumers keep the schedule: wake them to look again
            keys = [f"{queue_key}.delayed", f"{queue_key}.msgs"]
            return [self.schedule_script.sha, 2, *keys, channel, dq_name(queue_name), *items]
        return [self.enqueue_script.sha, 2, queue_key, f"{queue_key}.msgs", channel, queue_name, *items]
