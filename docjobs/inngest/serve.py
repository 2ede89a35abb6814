"""Inngest's serve endpoint on Starlette: GET introspection, PUT sync, POST call.

The SDK ships adapters for FastAPI, Flask, Django and Tornado, not Starlette; this
is the FastAPI one's shape around the SDK's own ``CommHandler`` (which does the
protocol), with one addition: outside dev mode a POST (a call that runs code) must
carry a fresh signature (see ``signature``), not accepted before, before the SDK
sees it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import Any

import inngest
from inngest._internal import comm_lib, server_lib, transforms
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from docjobs.inngest import signature
from docjobs.signatures import ReplayMemory

#: The closest framework the SDK knows; it only shows in headers and introspection.
FRAMEWORK = server_lib.Framework.FAST_API


def serve_routes(
    client: inngest.Inngest,
    functions: Sequence[inngest.Function[Any]],
    *,
    path: str,
    signing_keys: Sequence[str],
    clock: Callable[[], float] = time.time,
) -> list[Route]:
    """The routes serving ``functions`` at ``path``.

    Args:
        client: The app's Inngest client (dev or cloud mode, keys, origins).
        functions: The functions it serves.
        path: Where Inngest calls, e.g. ``/api/jobs``.
        signing_keys: Keys a call may be signed with (primary, then fallback);
            empty in dev mode, where nothing is checked.
        clock: Seconds since the epoch (tests move it).
    """
    handler = comm_lib.CommHandler(
        client=client,
        enable_unauthed_sync=None,
        framework=FRAMEWORK,
        functions=list(functions),
        streaming=None,
    )

    replays = ReplayMemory(window_seconds=signature.MAX_AGE_SECONDS)

    def comm_request(request: Request, body: bytes) -> comm_lib.CommRequest:
        return comm_lib.CommRequest(
            body=body,
            headers=dict(request.headers.items()),
            public_path=None,
            query_params=dict(request.query_params.items()),
            raw_request=request,
            request_url=str(request.url),
            serve_origin=None,
            serve_path=path,
        )

    async def get(request: Request) -> Response:
        if (refusal := _bad_query(request)) is not None:
            return refusal
        return _response(client, handler.get_sync(comm_request(request, await request.body())))

    async def put(request: Request) -> Response:
        if (refusal := _bad_query(request)) is not None:
            return refusal
        return _response(client, await handler.put(comm_request(request, await request.body())))

    async def post(request: Request) -> Response:
        body = await request.body()
        if signing_keys:
            header = request.headers.get("x-inngest-signature")
            now = clock()
            try:
                signed_at = signature.verify(body, header, signing_keys, now)
            except signature.SignatureError as exc:
                return JSONResponse({"message": f"Unauthorized: {exc}"}, status_code=401)
            if not replays.first_time(str(header), signed_at, now):
                return JSONResponse(
                    {"message": "Unauthorized: replayed X-Inngest-Signature"}, status_code=401
                )
        if (refusal := _bad_query(request)) is not None:
            return refusal
        return _response(client, await handler.post(comm_request(request, body)))

    return [
        Route(path, get, methods=["GET"]),
        Route(path, put, methods=["PUT"]),
        Route(path, post, methods=["POST"]),
    ]


def _bad_query(request: Request) -> Response | None:
    """400 for a query the SDK would answer with a 500 (an unknown ``probe``)."""
    probe = request.query_params.get(server_lib.QueryParamKey.PROBE.value)
    if probe and probe not in {member.value for member in server_lib.Probe}:
        return JSONResponse({"message": "unsupported probe"}, status_code=400)
    return None


def _response(client: inngest.Inngest, answer: comm_lib.CommResponse) -> Response:
    body = transforms.dump_json(answer.body)
    if isinstance(body, Exception):
        answer = comm_lib.CommResponse.from_error(client.logger, body)
        body = json.dumps(answer.body)
    return Response(content=body.encode(), headers=answer.headers, status_code=answer.status_code)
