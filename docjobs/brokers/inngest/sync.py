"""``docjobs inngest sync``: register the app with Inngest from the command line.

What a PUT to ``/api/jobs`` makes the SDK do (an out-of-band sync: the SDK posts
the app's functions to Inngest's ``/fn/register``), without a running web app:
useful in a deploy step, before the new version takes traffic.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import inngest
from inngest._internal import comm_lib

from docjobs import errors
from docjobs.brokers.base import SyncedFunction
from docjobs.brokers.inngest.serve import FRAMEWORK, serve_location


def sync_app(
    client: inngest.Inngest, functions: Sequence[inngest.Function[Any]], url: str
) -> list[SyncedFunction]:
    """Register ``functions`` (``InngestBroker.functions()``) as served at ``url``.

    Args:
        client: The app's Inngest client.
        functions: Every declared actor's function.
        url: Where Inngest is to call the app (``docjobs inngest sync`` gives
            ``Settings.inngest_serve_url`` unless told otherwise).

    Raises:
        errors.ServiceError: Inngest refused the registration or could not be reached.
    """
    origin, path = serve_location(url)
    handler = comm_lib.CommHandler(
        client=client,
        # No request to authenticate: whoever runs this holds the keys, and the
        # registration it sends Inngest is authenticated with the signing key.
        enable_unauthed_sync=True,
        framework=FRAMEWORK,
        functions=list(functions),
        streaming=None,
    )
    answer = handler.put_sync(
        comm_lib.CommRequest(
            body=b"",
            headers={},
            public_path=None,
            query_params={},
            raw_request=None,
            request_url=url,
            serve_origin=origin,
            serve_path=path,
        )
    )
    # inngest 0.5.19 answers 200 with Inngest's error body when the registration is
    # refused (it builds the error response and then drops it): look at the body too.
    accepted = answer.status_code == 200 and isinstance(answer.body, dict) and answer.body.get("ok") is True
    if not accepted:
        raise errors.ServiceError(f"Inngest refused the sync ({answer.status_code}): {_message(answer.body)}")
    registered = []
    for function in functions:
        config = function.get_config(url).main
        triggers = tuple(
            f"event {trigger.event}" if hasattr(trigger, "event") else f"cron {trigger.cron}"
            for trigger in config.triggers
        )
        registered.append(SyncedFunction(function.get_id(), triggers))
    return registered


def _message(body: Any) -> str:
    if isinstance(body, dict):
        return str(body.get("message") or body.get("error") or body)
    return str(body)
