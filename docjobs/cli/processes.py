"""The commands that run until stopped: the web app, a worker, the scheduler."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Literal

from docjobs import errors
from docjobs import logging as docjobs_logging
from docjobs.cli.actors import DEFAULT_ACTOR_MODULES, load_actor_modules
from docjobs.settings import Settings


def run_web(args: argparse.Namespace) -> int:
    """``docjobs web``: serve the web app (with an embedded worker and scheduler unless told not to)."""
    import uvicorn

    from docjobs import runtime, startup
    from docjobs.db import pool
    from docjobs.web import server
    from docjobs.web.app import create_app

    settings = Settings.from_environ(secrets=False)
    if args.concurrency is not None:
        settings = settings.with_concurrency(args.concurrency)  # in the variable the provider reads
    changes: dict[str, object] = {}
    if args.port is not None:
        changes["port"] = args.port
    if args.no_worker:
        changes["embedded_worker"] = False
    if args.no_cron:
        changes["embedded_scheduler"] = False
    settings = settings.replace(**changes) if changes else settings
    # Every missing secret in one line, the certificate too when this process runs jobs.
    capabilities = runtime.provider_class(settings.provider).capabilities_for(settings)
    settings.require_secrets(signs=(settings.embedded_worker and capabilities.workers) or capabilities.served)
    docjobs_logging.configure(settings.log_level)
    pool.set_process_role("web")
    current = startup.wait_until_ready(settings, runtime.configure)
    load_actor_modules(args.actors)
    app = create_app(current)
    uvicorn.run(app, host=args.host, port=settings.port, **server.uvicorn_options(settings))
    current.close()
    return 0


def run_worker(args: argparse.Namespace) -> int:
    """``docjobs worker``: become a Dramatiq worker for docjobs' actors and the given modules."""
    from docjobs import registry, runtime, startup
    from docjobs.certificate_check import require_certificate, signing_jobs
    from docjobs.db import pool
    from docjobs.pdf.identity import load_identity

    # Fail here, with one line, rather than in each worker process. Whether the provider
    # has workers comes first: inngest has none, whatever secrets are set.
    settings = Settings.from_environ(secrets=False)
    _refuse_without(settings, "worker", "workers")
    _refuse_below_one(processes=args.processes, threads=args.threads)
    # The app's modules too, as `docjobs web` loads them: a typo is one line here, not
    # Dramatiq's traceback from each worker process (which import them again, and
    # refuse actors bound to another broker at boot).
    load_actor_modules(args.modules)
    # Every missing secret in one line; the certificate when the queues hold the signing job.
    settings.require_secrets(signs=bool(signing_jobs(registry.declared(), args.queues)))
    require_certificate(settings, lambda: load_identity(settings), registry.declared(), args.queues)
    # The database answers with docjobs' schema, and Redis on bullmq: waited for here,
    # with backoff, so that the worker processes start on servers that answer.
    docjobs_logging.configure(settings.log_level)
    pool.set_process_role("worker")
    startup.wait_until_ready(settings, runtime.build).close()
    threads = args.threads if args.threads is not None else settings.worker_threads
    command = [
        sys.executable,
        "-m",
        "docjobs.cli.dramatiq_worker",  # Dramatiq's command line, logging as every docjobs command
        "docjobs.runtime:broker",
        *DEFAULT_ACTOR_MODULES,
        *args.modules,
        "--processes",
        str(args.processes),
        "--threads",
        str(threads),
    ]
    if args.queues:
        command += ["--queues", *args.queues]
    # Idle threads look up every 100 ms rather than every second, so the worker
    # stops promptly; the consumer does not query on these wake-ups.
    environ = {"dramatiq_worker_timeout": "100", **os.environ}
    sys.stdout.flush()
    os.execve(sys.executable, command, environ)
    return 0  # not reached


def _refuse_below_one(**counts: int | None) -> None:
    """Refuse ``--processes 0`` or ``--threads 0``: a worker that would look healthy and run nothing.

    Raises:
        errors.SettingsError: A count given is below 1, named by its flag.
    """
    for flag, count in counts.items():
        if count is not None and count < 1:
            raise errors.SettingsError(
                f"--{flag} must be 1 or more, not {count}: a worker needs {flag} to run jobs"
            )


def _refuse_without(settings: Settings, command: str, capability: Literal["workers", "scheduler"]) -> None:
    """Refuse ``command`` on a provider without ``capability`` (read before anything is built).

    Raises:
        errors.NotSupportedError: The provider runs the jobs, or fires the schedules, itself.
    """
    from docjobs import runtime

    provider = runtime.provider_class(settings.provider)
    if getattr(provider.capabilities_for(settings), capability):
        return
    raise errors.NotSupportedError(
        f"docjobs {command} has nothing to do with NEXT_PRIVATE_JOBS_PROVIDER={settings.provider}: "
        f"{provider.runs_jobs or f'it has no {capability}'}"
    )


def run_scheduler(args: argparse.Namespace) -> int:
    """``docjobs scheduler``: fire the cron table's schedules with periodiq, or list them."""
    from datetime import UTC, datetime

    import periodiq

    from docjobs import runtime, startup
    from docjobs.db import pool
    from docjobs.scheduler import listing

    settings = Settings.from_environ()
    _refuse_without(settings, "scheduler", "scheduler")
    docjobs_logging.configure(settings.log_level)
    pool.set_process_role("scheduler")
    current = startup.wait_until_ready(settings, runtime.configure)
    load_actor_modules(args.modules)
    if args.list:
        assert current.ledger is not None
        rows = listing.states(current.cron, current.ledger, datetime.now(UTC))
        print(listing.render(rows, current.cron))
        current.close()
        return 0
    # periodiq imports the broker and the modules itself: both are loaded already,
    # with the cron table's `periodic` options on the scheduled actors.
    options = periodiq.make_argument_parser().parse_args(
        ["docjobs.runtime:broker", *DEFAULT_ACTOR_MODULES, *args.modules]
    )
    code: int = periodiq.main(options)
    return code
