"""The Starlette app: the admin board, self-trigger endpoint, health, the embedded worker and scheduler.

``docjobs web`` serves this app on uvicorn. With the embedded worker (the default),
the process also runs a Dramatiq worker for every declared queue, as the reference
service runs its jobs in the web process; ``--no-worker`` serves only. With the
embedded scheduler (the default) it also fires the cron table's slots;
``--no-cron`` turns that off. Where the provider has no workers or docjobs fires
no schedules (inngest), there is neither: the provider calls the app to run jobs
and fire schedules. The provider mounts its own routes (the local self-trigger,
Inngest's serve endpoint) and may run threads beside the app (inngest's outbox
relay): ``Broker.routes()`` and ``Broker.services()``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

import dramatiq
import psycopg
from dramatiq.errors import BrokerConnectionError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route, Router
from starlette.types import ExceptionHandler

from docjobs.certificate_check import require_certificate
from docjobs.runtime import Runtime
from docjobs.web.board.routes import BOARD_PATH, board_routes
from docjobs.web.bodies import BoundedBodies

if TYPE_CHECKING:
    from docjobs.web.board.access import AuthorizeHook

logger = logging.getLogger(__name__)

#: How long a stopping web process waits for running jobs.
WORKER_STOP_TIMEOUT_MS = 30_000
#: How often idle worker and consumer threads look up (stop requests, acks).
#: Short, so the web process stops quickly; it costs no queries (see the consumer).
WORKER_TIMEOUT_MS = 100


class EmbeddedWorker:
    """A Dramatiq worker inside the web process; start and stop are idempotent."""

    def __init__(self, broker: dramatiq.Broker, threads: int) -> None:
        self.broker = broker
        self.threads = threads
        self.worker: dramatiq.Worker | None = None

    def start(self) -> None:
        if self.worker is None:
            # The dramatiq CLI emits process_boot in each worker process; so must we
            # (TimeLimit starts its watchdog thread on it).
            self.broker.emit_after("process_boot")
            self.worker = dramatiq.Worker(
                self.broker, worker_threads=self.threads, worker_timeout=WORKER_TIMEOUT_MS
            )
            self.worker.start()
            logger.info(
                "Embedded worker started with %d threads.", self.threads, extra={"action": "worker_started"}
            )

    def stop(self) -> None:
        worker, self.worker = self.worker, None
        if worker is not None:
            worker.stop(timeout=WORKER_STOP_TIMEOUT_MS)


def create_app(
    runtime: Runtime,
    *,
    embedded_worker: bool | None = None,
    embedded_scheduler: bool | None = None,
    board_authorize: AuthorizeHook | None = None,
) -> Starlette:
    """Build the web app.

    Args:
        runtime: The process's runtime (settings, broker, store).
        embedded_worker: Run jobs in this process; defaults to the setting.
        embedded_scheduler: Fire cron slots from this process; defaults to the setting.
        board_authorize: The host app's own rule for the admin board, on top of
            docjobs' (``False`` answers 403).

    Returns:
        The app, mounted under ``NEXT_PUBLIC_BASE_PATH`` when one is set.
    """
    settings = runtime.settings
    capabilities = runtime.broker.capabilities
    run_worker = settings.embedded_worker if embedded_worker is None else embedded_worker
    run_worker = run_worker and capabilities.workers
    worker = EmbeddedWorker(runtime.broker, settings.worker_threads) if run_worker else None
    run_scheduler = settings.embedded_scheduler if embedded_scheduler is None else embedded_scheduler
    run_scheduler = run_scheduler and capabilities.scheduler
    scheduler = runtime.in_process_scheduler() if run_scheduler else None
    services = runtime.broker.services()
    if worker is not None or capabilities.served:  # this process runs jobs (or the provider calls it to)
        # In a short-lived process: pyHanko would stay in this one (~26 MiB) until the first seal.
        require_certificate(settings, runtime.check_signing_identity, runtime.broker.actors)

    async def healthz(request: Request) -> Response:
        healthy = await run_in_threadpool(_database_answers, runtime)
        body = {
            "status": "ok" if healthy else "unavailable",
            "provider": settings.provider,
            "worker": worker is not None and worker.worker is not None,
            "scheduler": scheduler is not None,
        }
        return JSONResponse(body, status_code=200 if healthy else 503)

    board_path = settings.base_path + BOARD_PATH
    # The board first: its POSTs would otherwise match the self-trigger's pattern.
    routes: list[BaseRoute] = [
        Route("/healthz", healthz, methods=["GET"]),
        *board_routes(runtime, authorize=board_authorize),
    ]
    if settings.is_development and runtime.database is not None:
        # Someone opening the app's address in development finds the board; in
        # production, `/` is the host app's (and a 404 here).
        board_url = board_path + "/"  # the board's own URL: one redirect, not two
        routes.insert(0, Route("/", lambda request: RedirectResponse(board_url), methods=["GET"]))
    routes.extend(runtime.broker.routes())

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if worker is not None:
            await run_in_threadpool(worker.start)
        if scheduler is not None:
            scheduler.start()
        for service in services:
            service.start()
        try:
            yield
        finally:
            for service in reversed(services):
                await run_in_threadpool(service.stop)
            if scheduler is not None:
                await run_in_threadpool(scheduler.stop)
            if worker is not None:
                await run_in_threadpool(worker.stop)

    if settings.base_path:
        routes = [Mount(settings.base_path, app=Router(routes=routes, redirect_slashes=False))]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        # Outermost of ours: no route, nor its authentication, runs before the body is in.
        middleware=[
            Middleware(
                BoundedBodies,
                max_bytes=settings.max_body_bytes,
                timeout_seconds=settings.read_timeout_seconds,
            )
        ],
        exception_handlers={
            # Pool time-outs too; the driver's message may name the host, not needed here.
            psycopg.OperationalError: answer_unavailable(
                "database", lambda exc: type(exc).__name__, board=board_path
            ),
            # Redis, or Inngest's event API
            BrokerConnectionError: answer_unavailable("queue", str, board=board_path),
        },
    )
    # Starlette's trailing-slash redirect names the request's Host: a cache in front would
    # keep a forged one. Every redirect of this app is a path.
    app.router.redirect_slashes = False
    app.state.runtime = runtime
    app.state.worker = worker
    app.state.scheduler = scheduler
    return app


def _database_answers(runtime: Runtime) -> bool:
    if runtime.store is None:
        return True
    try:
        runtime.store.ping(timeout_seconds=HEALTH_CHECK_TIMEOUT_SECONDS)
    except Exception as exc:  # noqa: BLE001 - any failure means unhealthy
        logger.warning("Health check failed: %s", exc)
        return False
    return True


#: The longest ``/healthz`` waits for a database connection: a container's health check
#: gives up sooner than the pool's 10 s.
HEALTH_CHECK_TIMEOUT_SECONDS = 2.0
#: How long a client is told to wait when the database does not answer.
RETRY_AFTER_SECONDS = 2


def answer_unavailable(what: str, detail: Callable[[Exception], object], *, board: str) -> ExceptionHandler:
    """A handler answering 503, not 500: the request was fine and may be made again once
    ``what`` (the database, the queue) answers.

    The board's pages (under ``board``) get a line of text; every API, the board's own
    (``{board}/api/``) included, gets ``{"error": ...}`` as its refusals do.
    """
    api = board + "/api/"

    async def handle(request: Request, exc: Exception) -> Response:
        path = request.url.path
        logger.warning("The %s is unavailable for %s %r: %s", what, request.method, path, detail(exc))
        message = f"The {what} is unavailable; try again shortly."
        headers = {"retry-after": str(RETRY_AFTER_SECONDS)}
        if path.startswith(board) and not path.startswith(api):
            return PlainTextResponse(message, status_code=503, headers=headers)
        return JSONResponse({"error": message}, status_code=503, headers=headers)

    return handle
