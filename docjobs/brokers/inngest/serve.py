"""Inngest's serve endpoint on Starlette: GET introspection, PUT sync, POST call.

The SDK ships adapters for FastAPI, Flask, Django and Tornado, not Starlette; this
is the FastAPI one's shape around the SDK's own ``CommHandler`` (which does the
protocol), with checks before the SDK sees a request. With signing keys (production):

- every request carries one fresh ``X-Inngest-Signature`` over its body, read
  strictly (see ``signature``); a sync (PUT) is no exception, since it makes the app
  register the URL Inngest calls, and the SDK would take an unsigned one;
- each signature is remembered by its ``(t, s)``, and one that matters is honoured
  once: a call (POST) runs code, an introspection (GET) and an in-band sync answer
  with the hashes of the keys (the hash of the signing key is Inngest's API bearer).
  An out-of-band sync or a trust probe is answered even if its signature was seen
  (repeating one only registers the same URL again, and Inngest may send two in the
  same second), but it still marks the signature used: the signature covers the body,
  not the method, so an empty-bodied sync must not be replayable as an introspection;
- the app registers itself at ``serve_url`` (``INNGEST_SERVE_ORIGIN`` and
  ``INNGEST_SERVE_PATH``, else the public URL), never at the URL the request came
  to, whose ``Host`` header is the sender's to choose;
- a call runs only the function its signed event starts (see ``triggers``).

Always: the body is JSON docjobs accepts (``strictjson``) or empty; a call names one
known function. A refusal writes nothing, answers 4xx and logs one line without
the signature.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

import inngest
import orjson
from inngest._internal import comm_lib, server_lib, transforms
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from docjobs import strictjson
from docjobs.brokers.inngest import signature, triggers
from docjobs.brokers.inngest.triggers import SHOWN_CHARS
from docjobs.signatures import ReplayMemory

logger = logging.getLogger(__name__)

#: The closest framework the SDK knows; it only shows in headers and introspection.
FRAMEWORK = server_lib.Framework.FAST_API
SIGNATURE_HEADER = server_lib.HeaderKey.SIGNATURE.value.lower()
SYNC_KIND_HEADER = server_lib.HeaderKey.SYNC_KIND.value.lower()
FUNCTION_ID_PARAM = server_lib.QueryParamKey.FUNCTION_ID.value
PROBE_PARAM = server_lib.QueryParamKey.PROBE.value
PROBES = frozenset(member.value for member in server_lib.Probe)
#: Bodies up to this size are checked on the event loop; larger ones in a thread, one at a time.
INLINE_BODY_BYTES = 64 * 1024
#: How long a large body waits for its turn before 503.
LARGE_BODY_WAIT_SECONDS = 10.0


class _Refused(Exception):
    """A request answered ``status`` with ``message`` before the SDK sees it."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def serve_routes(
    client: inngest.Inngest,
    functions: Sequence[inngest.Function[Any]],
    *,
    path: str,
    signing_keys: Sequence[str],
    serve_url: str | None,
    clock: Callable[[], float] = time.time,
) -> list[Route]:
    """The routes serving ``functions`` at ``path``.

    Args:
        client: The app's Inngest client (dev or cloud mode, keys, origins).
        functions: The functions it serves.
        path: Where Inngest calls, e.g. ``/api/jobs``.
        signing_keys: Keys a request may be signed with (primary, then fallback);
            empty in dev mode, where nothing is checked.
        serve_url: Where Inngest must call the app, the URL every sync registers.
            ``None`` only in dev mode, where the dev server's request says it.
        clock: Seconds since the epoch (tests move it).

    Raises:
        ValueError: Signing keys without a ``serve_url``.
    """
    production = bool(signing_keys)
    if production and serve_url is None:
        raise ValueError("an Inngest serve endpoint with signing keys needs its serve_url")
    handler = comm_lib.CommHandler(
        client=client,
        enable_unauthed_sync=not production,
        framework=FRAMEWORK,
        functions=list(functions),
        streaming=None,
    )
    starts = triggers.trigger_events(functions, serve_url or f"http://localhost{path}")
    replays = ReplayMemory(window_seconds=signature.MAX_AGE_SECONDS)
    serve_origin, serve_path = serve_location(serve_url) if serve_url is not None else (None, path)

    def comm_request(request: Request, headers: dict[str, str], body: bytes) -> comm_lib.CommRequest:
        return comm_lib.CommRequest(
            body=body,
            headers=headers,
            public_path=None,
            query_params=dict(request.query_params.items()),
            raw_request=request,
            request_url=serve_url or str(request.url),
            serve_origin=serve_origin,
            serve_path=serve_path,
        )

    # Bodies past INLINE_BODY_BYTES are read and checked in a worker thread, one at a
    # time: anyone may send 4 MB with a made-up signature, and reading it must neither
    # stall the event loop nor multiply its memory by the number of senders.
    large_bodies = asyncio.Semaphore(1)

    async def authenticated(request: Request, body: bytes) -> tuple[Any, signature.Signature | None]:
        """The body read, and in production its signature: checked, not yet remembered."""
        signed = None
        if production:
            try:
                signed = signature.parse(request.headers.getlist(SIGNATURE_HEADER), clock())
            except signature.SignatureError as exc:
                raise _Refused(401, f"Unauthorized: {exc}") from None
        if len(body) <= INLINE_BODY_BYTES:
            return _verified(body, signed, signing_keys), signed
        try:
            async with asyncio.timeout(LARGE_BODY_WAIT_SECONDS):
                await large_bodies.acquire()
        except TimeoutError:
            raise _Refused(503, "busy with other large requests; try again") from None
        try:
            return await run_in_threadpool(_verified, body, signed, signing_keys), signed
        finally:
            large_bodies.release()

    def remember(signed: signature.Signature, *, once: bool = True) -> None:
        """Mark the signature used; refuse it if seen before and ``once``."""
        if not replays.first_time(signed.replay_key, signed.at, clock()) and once:
            raise _Refused(401, "Unauthorized: replayed X-Inngest-Signature")

    async def get(request: Request) -> Response:
        try:
            body = await request.body()
            _, signed = await authenticated(request, body)
            _check_probe(request)
            if signed is not None:
                remember(signed)
        except _Refused as refused:
            return _refusal(request, refused)
        headers = dict(request.headers.items())
        return _response(client, handler.get_sync(comm_request(request, headers, body)))

    async def put(request: Request) -> Response:
        try:
            body = await request.body()
            document, signed = await authenticated(request, body)
            _check_probe(request)
            # The SDK's view of the headers (the last of a repeated one), so both agree.
            headers = dict(request.headers.items())
            in_band = headers.get(SYNC_KIND_HEADER) == server_lib.SyncKind.IN_BAND.value
            if signed is not None:
                if in_band and not (isinstance(document, dict) and isinstance(document.get("url"), str)):
                    raise _Refused(400, "an in-band sync's body is a JSON object with its url")
                remember(signed, once=in_band)
        except _Refused as refused:
            return _refusal(request, refused)
        return _response(client, await handler.put(comm_request(request, headers, body)))

    async def post(request: Request) -> Response:
        try:
            body = await request.body()
            document, signed = await authenticated(request, body)
            _check_probe(request)
            # As the SDK reads it: an empty probe is none, and the call goes on to its function.
            probe = bool(request.query_params.get(PROBE_PARAM))
            if not probe:
                function_id = _function_id(request, starts)
                if signed is not None:
                    try:
                        triggers.check_call(document, function_id, starts)
                    except triggers.CallRefused as exc:
                        raise _Refused(401, f"Unauthorized: {exc}") from None
            if signed is not None:
                remember(signed, once=not probe)
        except _Refused as refused:
            return _refusal(request, refused)
        headers = dict(request.headers.items())
        return _response(client, await handler.post(comm_request(request, headers, body)))

    return [
        Route(path, get, methods=["GET"]),
        Route(path, put, methods=["PUT"]),
        Route(path, post, methods=["POST"]),
    ]


def serve_location(url: str) -> tuple[str, str]:
    """``url`` as the SDK takes it: its origin and its path (so the SDK's own reading of
    ``INNGEST_SERVE_ORIGIN``/``PATH`` or of a request cannot move it)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}", parts.path


def _verified(body: bytes, signed: signature.Signature | None, keys: Sequence[str]) -> Any:
    """The body as JSON (``None`` when empty), its signature checked first when there is one.

    Before its signature is known good, a body is touched by orjson's C code only, or,
    when it is at most ``signature.MAX_SLOW_CANONICAL_BYTES``, by the pure-Python JCS
    form as well; the walk of ``strictjson.check`` (depth, NUL) runs after it.

    Raises:
        _Refused: 400 for a body that is not JSON docjobs accepts, 401 for a bad signature.
    """
    document = None
    if body:
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise _Refused(400, f"the body is not acceptable JSON: not valid JSON: {exc}") from None
    refusal = None
    if signed is not None:
        try:
            signature.check(signed, body, document, keys)
        except signature.SignatureError as exc:
            refusal = _Refused(401, f"Unauthorized: {exc}")
    if refusal is None and document is not None:
        try:
            strictjson.check(document, max_depth=signature.MAX_BODY_DEPTH)
        except strictjson.JsonRefused as exc:
            refusal = _Refused(400, f"the body is not acceptable JSON: {exc}")
    if refusal is not None:
        # Raised outside the handlers, with the document let go: a refusal travels back
        # through the thread pool in a reference cycle, and whatever its frames hold (a
        # forged 4 MB body read into objects, ~100 MiB) would wait for a full collection.
        document = None
        raise refusal
    return document


def _check_probe(request: Request) -> None:
    """400 for a query the SDK would answer with a 500 (an unknown ``probe``)."""
    probe = request.query_params.get(PROBE_PARAM)
    if probe and probe not in PROBES:
        raise _Refused(400, "unsupported probe")


def _function_id(request: Request, starts: dict[str, frozenset[str]]) -> str:
    """The one function a call names, known to the app."""
    named = request.query_params.getlist(FUNCTION_ID_PARAM)
    if len(named) != 1:
        raise _Refused(400, f"a call names exactly one function ({FUNCTION_ID_PARAM}), not {len(named)}")
    if named[0] not in starts:
        raise _Refused(404, f"no function {named[0][:SHOWN_CHARS]!r} is served here")
    return named[0]


def _refusal(request: Request, refused: _Refused) -> Response:
    logger.warning(
        "Refused an Inngest %s (%d): %s",
        request.method,
        refused.status,
        refused.message,
        extra={"action": "inngest_request_refused", "status": refused.status},
    )
    return JSONResponse({"message": refused.message}, status_code=refused.status)


def _response(client: inngest.Inngest, answer: comm_lib.CommResponse) -> Response:
    body = transforms.dump_json(answer.body)
    if isinstance(body, Exception):
        answer = comm_lib.CommResponse.from_error(client.logger, body)
        body = json.dumps(answer.body)
    return Response(content=body.encode(), headers=answer.headers, status_code=answer.status_code)
