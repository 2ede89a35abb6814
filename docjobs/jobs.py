"""Send jobs by job id, whatever the provider.

from docjobs import jobs
jobs.trigger("internal.seal-document", {"documentId": 73})

with db.transaction() as conn:          # local provider: the job commits with your data
    ...
    jobs.trigger("send.signing.requested.email", {...}, conn=conn)
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from typing import Any

import dramatiq
import psycopg

from docjobs import errors, globalbroker, registry, runtime
from docjobs.brokers.base import Broker
from docjobs.ids import new_job_id, new_job_ids

Delay = float | timedelta | None
#: The longest delay a send takes: ten years (a longer one is a mistake, or an overflow).
MAX_DELAY_SECONDS = 10 * 366 * 86400


#: The job ids of docjobs' own jobs start with these (``internal.seal-document``).
OWN_JOB_PREFIXES = ("internal.", "send.")


def trigger(
    job_id: str,
    payload: Mapping[str, Any],
    *,
    conn: psycopg.Connection[Any] | None = None,
    id: str | None = None,  # noqa: A002 - the reference API's name
    delay: Delay = None,
) -> dramatiq.Message[Any]:
    """Enqueue one job.

    Args:
        job_id: The actor name (``internal.seal-document``).
        payload: The camelCase payload; it is validated before anything is written.
        conn: Enqueue inside this connection's open transaction (local provider):
            a rollback enqueues nothing, and consumers are woken after the commit.
        id: A deduplication key used as the job id: a second trigger with the same
            id enqueues nothing while the first job's record exists (on every provider:
            until retention deletes it; on inngest without a database, 24 hours).
        delay: Seconds (or a timedelta) before the job may start.

    Returns:
        The enqueued message; its ``message_id`` is the job id.

    Raises:
        errors.ActorNotFound: No actor is declared under ``job_id``.
        errors.ForeignActor: The actor is declared on another broker than docjobs'.
        errors.PayloadError: The payload does not match; nothing was enqueued.
    """
    broker = runtime.get_broker()
    message = _message(broker, job_id, payload, id)
    if id is not None:
        _enqueue_once(broker, message, delay, conn)
        return message
    return broker.enqueue(message, delay=delay_ms(delay), conn=conn)


def trigger_once(
    job_id: str,
    payload: Mapping[str, Any],
    *,
    id: str,  # noqa: A002 - the reference API's name
    conn: psycopg.Connection[Any] | None = None,
    delay: Delay = None,
) -> bool:
    """Enqueue one job under the caller's ``id``, unless that id's job exists; say which.

    As :func:`trigger` with ``id=``, for callers that report what happened
    (``docjobs trigger --id``).

    Returns:
        True when the job was enqueued (with ``conn``: written in the transaction),
        False when a job with this id exists and nothing was enqueued.

    Raises:
        errors.ActorNotFound: No actor is declared under ``job_id``.
        errors.PayloadError: The payload does not match; nothing was enqueued.
    """
    broker = runtime.get_broker()
    return _enqueue_once(broker, _message(broker, job_id, payload, id), delay, conn)


def _enqueue_once(
    broker: Broker, message: dramatiq.Message[Any], delay: Delay, conn: psycopg.Connection[Any] | None
) -> bool:
    # The caller's id: the providers drop the send while that id's job exists.
    return broker.enqueue_many([message], delay=delay_ms(delay), conn=conn, deduplicate=True) > 0


def trigger_many(
    job_id: str,
    payloads: Iterable[Mapping[str, Any]],
    *,
    conn: psycopg.Connection[Any] | None = None,
    ids: Sequence[str] | None = None,
    delay: Delay = None,
) -> list[dramatiq.Message[Any]]:
    """Enqueue many jobs of one kind in one round trip.

    Every payload is validated first: if one is bad, nothing is enqueued.

    Raises:
        errors.PayloadError: Naming the index of the first bad payload and its field.
    """
    broker = runtime.get_broker()
    payloads = list(payloads)
    if ids is not None and len(ids) != len(payloads):
        raise ValueError(f"got {len(ids)} ids for {len(payloads)} payloads")
    if not payloads:
        return []
    queue_name, validated = _validate_many(broker, job_id, payloads)
    message_ids = list(ids) if ids is not None else new_job_ids(len(validated))
    messages: list[dramatiq.Message[Any]] = [
        dramatiq.Message(
            queue_name=queue_name,
            actor_name=job_id,
            args=(),
            kwargs=kwargs,
            options={},
            message_id=message_id,
        )
        for message_id, kwargs in zip(message_ids, validated, strict=True)
    ]
    broker.enqueue_many(messages, delay=delay_ms(delay), conn=conn, deduplicate=ids is not None)
    return messages


def delay_ms(delay: Delay) -> int | None:
    """A delay in seconds or a timedelta, as Dramatiq's milliseconds.

    Raises:
        errors.SendError: Negative, not a number, or over ``MAX_DELAY_SECONDS``.
    """
    if delay is None:
        return None
    seconds = delay.total_seconds() if isinstance(delay, timedelta) else float(delay)
    if not 0 <= seconds <= MAX_DELAY_SECONDS:  # NaN fails this too
        raise errors.SendError(f"delay must be between 0 and {MAX_DELAY_SECONDS} seconds, not {seconds}")
    return int(seconds * 1000)


def _message(
    broker: Broker, job_id: str, payload: Mapping[str, Any], message_id: str | None
) -> dramatiq.Message[Any]:
    queue_name, (kwargs,) = _validate_many(broker, job_id, [payload], single=True)
    return dramatiq.Message(
        queue_name=queue_name,
        actor_name=job_id,
        args=(),
        kwargs=kwargs,
        options={},
        message_id=new_job_id() if message_id is None else message_id,  # "" is refused at send
    )


def _own_job(job_id: str) -> registry.JobActor[Any, Any] | None:
    """docjobs' own job ``job_id``, declaring docjobs' jobs first if no module did: a flow
    (``docjobs.domain``) enqueues them by id from a script that never imported them."""
    if not job_id.startswith(OWN_JOB_PREFIXES):
        return None
    import docjobs.actors  # noqa: F401 - declares docjobs' jobs

    return registry.declared().get(job_id)


def _validate_many(
    broker: Broker, job_id: str, payloads: list[Mapping[str, Any]], *, single: bool = False
) -> tuple[str, list[dict[str, Any]]]:
    """The actor's queue and the canonical payloads; plain Dramatiq actors get them as given."""
    actor = registry.declared().get(job_id) or _own_job(job_id)
    if actor is None:
        plain = broker.actors.get(job_id)
        if plain is None:
            globalbroker.refuse_foreign(job_id)  # bound to another broker: say so
            raise errors.ActorNotFound(_not_declared(job_id, [*registry.declared(), *broker.actors]))
        for index, payload in enumerate(payloads):
            if not isinstance(payload, Mapping):
                where = "" if single else f"payload {index}: "
                raise errors.PayloadError(
                    f"{job_id}: {where}the payload must be a JSON object", job_id=job_id
                )
        return plain.queue_name, [dict(payload) for payload in payloads]
    if single:
        return actor.queue_name, [actor.validate(payloads[0])]
    return actor.queue_name, actor.validate_many(payloads)


def _not_declared(job_id: str, declared: Iterable[str]) -> str:
    """Why ``job_id`` is unknown, in one line: the closest declared id, and the module to load.

    No declared id shares its namespace (``reports.`` of ``reports.send-weekly``): the
    module declaring it is probably not imported.
    """
    known = sorted(set(declared))
    reason = f"no actor is declared as {job_id!r}"
    closest = difflib.get_close_matches(job_id, known, n=1)
    if closest:
        reason += f": did you mean {closest[0]!r}?"
    namespace = job_id.partition(".")[0] + "."
    if not any(name.startswith(namespace) for name in known):
        load = "import the module that declares it (docjobs commands: --actors MODULE)"
        reason += f" Or {load}" if closest else f": {load}"
    return reason
