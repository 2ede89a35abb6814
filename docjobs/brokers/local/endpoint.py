"""``POST /api/jobs/<job id>/<row id>``: the signed wake-up call of the local provider.

Unlike the reference, the job never runs inside this request: the endpoint checks
the request, wakes this process's consumer of the job's queue and answers 202 at
once, so no proxy time-out can cut a long job short. Nothing is written either
way; a job row that does not exist gets 404 without touching anything.

Order of checks: body size (413), signature (401), body shape (400), job (404).
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

import dramatiq
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from docjobs import signatures, strictjson
from docjobs.db.store import JobStore
from docjobs.web import bodies

logger = logging.getLogger(__name__)

#: Largest accepted body; a genuine one is well under 200 bytes.
MAX_BODY_BYTES = 16 * 1024


class WakesConsumers(Protocol):
    """What the endpoint needs of the local broker (which mounts it, so cannot be imported here)."""

    actors: dict[str, dramatiq.Actor[Any, Any]]
    store: JobStore

    def wake(self, queue_name: str | None = None) -> None:
        """Wake this process's consumers of ``queue_name``."""
        ...


class SelfTriggerEndpoint:
    """The endpoint, bound to a broker and a verifier."""

    def __init__(self, broker: WakesConsumers, verifier: signatures.SignatureVerifier) -> None:
        self.broker = broker
        self.verifier = verifier

    async def handle(self, request: Request) -> Response:
        actor_name = request.path_params["actor"]
        job_id = request.path_params["job_id"]
        body = await bodies.read_within(request, MAX_BODY_BYTES)
        if body is None:
            return PlainTextResponse("Payload too large", status_code=413)
        refusal = self.verifier.verify(
            request.headers.get(signatures.TIMESTAMP_HEADER),
            request.headers.get(signatures.SIGNATURE_HEADER),
            body,
        )
        if refusal is not None:
            logger.warning(
                "Refused a self-trigger request for %r: %s.",
                job_id,
                refusal,
                extra={"action": "self_trigger_refused", "reason": refusal},
            )
            return PlainTextResponse("Unauthorized", status_code=401)
        if (
            not _body_names(body, actor_name, job_id)
            or request.headers.get(signatures.JOB_ID_HEADER, job_id) != job_id
        ):
            return PlainTextResponse("Bad request", status_code=400)
        actor = self.broker.actors.get(actor_name)
        if actor is None:
            return PlainTextResponse("Job not found", status_code=404)
        row = await run_in_threadpool(self.broker.store.jobs.find, job_id)
        if row is None or row["actor"] != actor_name:
            return PlainTextResponse("Job not found", status_code=404)
        self.broker.wake(actor.queue_name)
        return PlainTextResponse("Accepted", status_code=202)


def _body_names(body: bytes, actor_name: str, job_id: str) -> bool:
    try:
        data: Any = strictjson.loads(body)
    except strictjson.JsonRefused:
        return False
    return isinstance(data, dict) and data.get("name") == actor_name and data.get("jobId") == job_id
