"""The commands that do one thing and exit: migrate, trigger, inngest sync, health, demo."""

from __future__ import annotations

import argparse
import importlib
import sys

from docjobs import errors, strictjson
from docjobs import logging as docjobs_logging
from docjobs.cli.actors import load_actor_modules
from docjobs.settings import Settings
from docjobs.settings_values import http_url


def run_migrate(args: argparse.Namespace) -> int:
    """``docjobs migrate``: apply the database migrations not applied yet."""
    from docjobs.db import pool
    from docjobs.db.migrate import migrate

    docjobs_logging.configure()
    settings = Settings.from_environ()
    if settings.database_url is None:
        raise errors.SettingsError("NEXT_PRIVATE_DATABASE_URL is required to migrate")
    pool.set_process_role("migrate")
    applied = migrate(settings.direct_database_url or settings.database_url)
    print(f"docjobs: {len(applied)} migration(s) applied" if applied else "docjobs: schema is up to date")
    return 0


def run_trigger(args: argparse.Namespace) -> int:
    """``docjobs trigger``: enqueue one job by id and print its message id."""
    from docjobs import jobs, runtime
    from docjobs.db import pool

    try:
        payload = strictjson.loads(args.payload)
    except strictjson.JsonRefused as exc:
        reason = f"{args.job_id}: the payload is refused: {exc}"
        raise errors.PayloadError(reason, job_id=args.job_id) from None
    docjobs_logging.configure("WARNING")
    pool.set_process_role("trigger")
    current = runtime.configure()
    try:
        load_actor_modules(args.actors)
        message = jobs.trigger(args.job_id, payload, id=args.id, delay=args.delay)
        print(message.message_id)
    finally:
        current.close()
    return 0


def run_inngest_sync(args: argparse.Namespace) -> int:
    """``docjobs inngest sync``: register the app's functions with Inngest and list them."""
    from docjobs import runtime

    docjobs_logging.configure("WARNING")
    current = runtime.configure()
    try:
        load_actor_modules(args.actors)
        settings = current.settings
        # The URL the web app serves and registers (INNGEST_SERVE_ORIGIN/PATH, else the public URL).
        try:
            url = http_url(args.url) if args.url else settings.inngest_serve_url
        except ValueError as exc:
            raise errors.SettingsError(f"--url {exc}, not {args.url!r}") from None
        registered = current.broker.sync_app(url)
    finally:
        current.close()
    print(f"Synced {settings.inngest_app_id} at {url}: {len(registered)} functions")
    width = max((len(function.id) for function in registered), default=0)
    for function in registered:
        print(f"  {function.id:<{width}}  {', '.join(function.triggers)}")
    return 0


def run_health(args: argparse.Namespace) -> int:
    """``docjobs health``: the liveness check of this container's role."""
    from docjobs import health

    return health.run(args.role)


def run_demo(args: argparse.Namespace) -> int:
    """``docjobs demo``: run the demo, which ships in docjobs-devkit."""
    # The demo starts test servers and the Inngest emulator: they ship in docjobs-devkit, not docjobs.
    try:
        demo = importlib.import_module("docjobs_devkit.demo")
    except ModuleNotFoundError as exc:
        if exc.name is None or not exc.name.startswith("docjobs_devkit"):
            raise
        print(
            "docjobs demo needs docjobs-devkit: in a checkout of docjobs, pip install -e ./devkit "
            "(make demo does it)",
            file=sys.stderr,
        )
        return 2
    status: int = demo.run_demo(once=args.once)
    return status
