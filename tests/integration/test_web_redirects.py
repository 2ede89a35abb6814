"""Redirects name a path, never the request's Host: a cache in front would keep the attacker's."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from docjobs_devkit.http import serve

from docjobs.runtime import Runtime
from docjobs.web.app import create_app

FORGED_HOST = "evil.example"


@pytest.mark.parametrize("base_path", ["", "/sign"])
def test_no_redirect_carries_a_forged_host(make_runtime: Callable[..., Runtime], base_path: str) -> None:
    runtime = make_runtime(NEXT_PUBLIC_BASE_PATH=base_path, NEXT_PRIVATE_JOBS_BOARD_TOKEN="t" * 32)
    app = create_app(runtime, embedded_worker=False, embedded_scheduler=False)
    board = f"{base_path}/api/jobs/board"
    with serve(app) as url, httpx.Client(base_url=url, headers={"Host": FORGED_HOST}, timeout=10) as client:
        # Starlette's trailing-slash redirect built an absolute URL from the Host header.
        answer = client.get(board)
        assert (307, f"{board}/") == (answer.status_code, answer.headers["location"])
        for path in (
            f"{board}/jobs/",
            f"{board}/api/overview/",
            f"{base_path}/healthz/",
            f"{board}/sign-in/",
        ):
            answer = client.get(path)
            assert FORGED_HOST not in answer.headers.get("location", ""), (path, answer.headers)
