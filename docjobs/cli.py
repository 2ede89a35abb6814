"""``docjobs migrate|web|worker|scheduler|trigger|inngest|admin|demo``.

Every flag has an environment variable (shown in ``--help``); a flag given on the
command line wins. A bad setting stops the command with one line naming it.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
from collections.abc import Sequence
from typing import Any, Literal

import psycopg
from dramatiq.errors import BrokerConnectionError

from docjobs import errors, redaction, strictjson
from docjobs import logging as docjobs_logging
from docjobs.settings import Settings, http_url

#: Exit code for bad settings or arguments (argparse uses it too).
EXIT_USAGE = 2
#: Exit code when the database cannot be reached.
EXIT_UNAVAILABLE = 3
#: Exit code of an unexpected error (a bug).
EXIT_FAILURE = 1
DEFAULT_ACTOR_MODULES = ("docjobs.actors",)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return EXIT_USAGE
    try:
        code: int = args.run(args)
    except errors.DocjobsError as exc:
        _say(f"docjobs: error: {exc}")
        return EXIT_USAGE
    except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn) as exc:
        reason = str(exc).strip().splitlines()[0]
        _say(f"docjobs: error: the database schema is out of date ({reason}): run docjobs migrate")
        return EXIT_USAGE
    except (psycopg.OperationalError, BrokerConnectionError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        _say(f"docjobs: error: the database is unreachable: {reason}")
        return EXIT_UNAVAILABLE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`| head`): nothing more to say, and nothing to flush at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:  # noqa: BLE001 - a bug: its traceback helps, its secrets must not show
        _say(traceback.format_exc().rstrip(), one_line=False)
        _say(f"docjobs: error: {type(exc).__name__}: {exc}")
        return EXIT_FAILURE
    return code


def _say(text: str, *, one_line: bool = True) -> None:
    """Print an error to stderr, redacted (every error path may carry a URL or a secret)."""
    text = redaction.redact(text)
    print(docjobs_logging.one_line(text) if one_line else text, file=sys.stderr)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="docjobs", description="Background jobs of a document-signing service, on Dramatiq."
    )
    commands = parser.add_subparsers(title="commands")

    migrate = commands.add_parser("migrate", help="apply database migrations (safe to run concurrently)")
    migrate.set_defaults(run=_migrate)

    web = commands.add_parser("web", help="serve the web app, with an embedded worker by default")
    web.add_argument(
        "--actors", nargs="*", default=[], metavar="MODULE", help="your modules of actors to load"
    )
    web.add_argument("--host", default="0.0.0.0", help="interface to listen on (default 0.0.0.0)")
    web.add_argument("--port", type=int, help="port to listen on [PORT, default 3000]")
    web.add_argument(
        "--no-worker",
        action="store_true",
        help="serve only; run jobs in separate workers [NEXT_PRIVATE_JOBS_EMBEDDED_WORKER=false]",
    )
    web.add_argument(
        "--no-cron",
        action="store_true",
        help="do not fire cron schedules from this process [NEXT_PRIVATE_JOBS_EMBEDDED_SCHEDULER=false]",
    )
    web.add_argument(
        "--concurrency",
        type=int,
        help=(
            "embedded worker threads [NEXT_PRIVATE_JOBS_CONCURRENCY, default 8; "
            "bullmq: NEXT_PRIVATE_BULLMQ_CONCURRENCY, default 10]"
        ),
    )
    web.set_defaults(run=_web)

    worker = commands.add_parser(
        "worker", help="run a Dramatiq worker for docjobs' actors and yours (wraps the dramatiq command)"
    )
    worker.add_argument("modules", nargs="*", metavar="MODULE", help="your modules of actors to load")
    worker.add_argument("--processes", "-p", type=int, default=1, help="worker processes (default 1)")
    worker.add_argument(
        "--threads", "-t", type=int, help="threads per process [NEXT_PRIVATE_JOBS_CONCURRENCY, default 8]"
    )
    worker.add_argument("--queues", "-Q", nargs="*", help="only consume these queues")
    worker.set_defaults(run=_worker)

    scheduler = commands.add_parser(
        "scheduler", help="fire the cron table's schedules with periodiq (any number may run)"
    )
    scheduler.add_argument("modules", nargs="*", metavar="MODULE", help="your modules of actors to load")
    scheduler.add_argument(
        "--list", action="store_true", help="print each schedule with its last and next firing, then exit"
    )
    scheduler.set_defaults(run=_scheduler)

    trigger = commands.add_parser("trigger", help="enqueue one job")
    trigger.add_argument("job_id", metavar="JOB_ID", help="the job id, e.g. internal.seal-document")
    trigger.add_argument("payload", metavar="JSON", help="the camelCase payload, a JSON object")
    trigger.add_argument("--delay", type=float, metavar="SECONDS", help="start no sooner than this")
    trigger.add_argument("--id", help="deduplication key: a second trigger with the same id enqueues nothing")
    trigger.add_argument("--actors", nargs="*", default=[], metavar="MODULE", help="your modules of actors")
    trigger.set_defaults(run=_trigger)

    inngest = commands.add_parser("inngest", help="the inngest provider's commands")
    inngest_commands = inngest.add_subparsers(title="commands", required=True)
    sync = inngest_commands.add_parser(
        "sync", help="register the app's functions with Inngest (as a PUT to /api/jobs would)"
    )
    sync.add_argument(
        "--url",
        help=(
            "where Inngest calls the app [INNGEST_SERVE_ORIGIN + INNGEST_SERVE_PATH, "
            "default NEXT_PUBLIC_WEBAPP_URL's origin + NEXT_PUBLIC_BASE_PATH + /api/jobs]"
        ),
    )
    sync.add_argument("--actors", nargs="*", default=[], metavar="MODULE", help="your modules of actors")
    sync.set_defaults(run=_inngest_sync)

    admin = commands.add_parser("admin", help="the admin board's users")
    admin_commands = admin.add_subparsers(title="commands", required=True)
    create_user = admin_commands.add_parser(
        "create-user", help="make EMAIL an ADMIN who signs in to the board (reads the password from stdin)"
    )
    create_user.add_argument("email", metavar="EMAIL")
    create_user.add_argument("--name", help="the user's name, for a new user")
    create_user.set_defaults(run=_admin_create_user)

    health = commands.add_parser(
        "health", help="liveness check of this container's web, worker or scheduler: exit 0 or 1, one line"
    )
    health.add_argument(
        "role", nargs="?", help="web, worker or scheduler (default: read from the container's command)"
    )
    health.set_defaults(run=_health)

    demo = commands.add_parser("demo", help="run the demo: PostgreSQL, web app, worker and a few jobs")
    demo.add_argument("--once", action="store_true", help="run the demo jobs to completion, then exit")
    demo.set_defaults(run=_demo)
    return parser


#: The shortest board password ``docjobs admin create-user`` accepts.
MIN_PASSWORD_LENGTH = 12


def load_actor_modules(modules: Sequence[str]) -> None:
    """Import docjobs' actors and the given modules (each declares its actors).

    The current directory is on the path, as the ``dramatiq`` command has it, so
    every command finds the same modules.

    Raises:
        errors.SettingsError: A module cannot be imported, or refused an actor's
            declaration (a name taken, an unknown option), in one line.
    """
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    for name in (*DEFAULT_ACTOR_MODULES, *modules):
        try:
            importlib.import_module(name)
        except (ImportError, ValueError) as exc:
            raise errors.SettingsError(
                f"cannot load actor module {name!r}: {type(exc).__name__}: {exc}"
            ) from exc


def _migrate(args: argparse.Namespace) -> int:
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


def _web(args: argparse.Namespace) -> int:
    import uvicorn

    from docjobs import runtime
    from docjobs.db import pool
    from docjobs.web import server
    from docjobs.web.app import create_app

    settings = Settings.from_environ()
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
    docjobs_logging.configure(settings.log_level)
    pool.set_process_role("web")
    current = runtime.configure(settings)
    load_actor_modules(args.actors)
    app = create_app(current)
    uvicorn.run(app, host=args.host, port=settings.port, **server.uvicorn_options(settings))
    current.close()
    return 0


def _worker(args: argparse.Namespace) -> int:
    from docjobs import registry
    from docjobs.certificate_check import require_certificate
    from docjobs.pdf.identity import load_identity

    # Fail here, with one line, rather than in each worker process: a worker whose
    # queues hold docjobs' signing job needs the certificate.
    settings = Settings.from_environ()
    _refuse_without(settings, "worker", "workers")
    # docjobs' own actors only: the app's modules are imported by the worker processes
    # alone (as the dramatiq command does), whose boot refuses foreign actors.
    load_actor_modules(())
    require_certificate(settings, lambda: load_identity(settings), registry.declared(), args.queues)
    threads = args.threads if args.threads is not None else settings.worker_threads
    command = [
        sys.executable,
        "-m",
        "dramatiq",
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


def _scheduler(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    import periodiq

    from docjobs import runtime
    from docjobs.db import pool
    from docjobs.scheduler import listing

    settings = Settings.from_environ()
    _refuse_without(settings, "scheduler", "scheduler")
    docjobs_logging.configure(settings.log_level)
    pool.set_process_role("scheduler")
    current = runtime.configure(settings)
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


def _trigger(args: argparse.Namespace) -> int:
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


def _inngest_sync(args: argparse.Namespace) -> int:
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


def _admin_create_user(args: argparse.Namespace) -> int:
    import getpass

    from docjobs.db.board import BoardStore
    from docjobs.db.pool import Database
    from docjobs.web.board.access import MAX_EMAIL_CHARS, MAX_PASSWORD_CHARS, hash_password
    from docjobs.web.board.inputs import BadInput, checked

    settings = Settings.from_environ()
    if settings.database_url is None:
        raise errors.SettingsError("NEXT_PRIVATE_DATABASE_URL is required to create a board user")

    def sign_in_takes(value: str, what: str, **limits: Any) -> None:
        """Refuse what the sign-in form would refuse: the user could never sign in."""
        try:
            checked(value, what, **limits)
        except BadInput as exc:
            raise errors.SettingsError(f"{exc.reason}; nothing was changed") from None

    email = args.email.strip().lower()
    sign_in_takes(email, "EMAIL", max_chars=MAX_EMAIL_CHARS)
    if "@" not in email:
        raise errors.SettingsError(f"EMAIL must be an email address, not {args.email!r}")
    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            raise errors.SettingsError("the two passwords differ; nothing was changed")
    else:
        password = sys.stdin.readline().rstrip("\n")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise errors.SettingsError(
            f"the password must have at least {MIN_PASSWORD_LENGTH} characters; nothing was changed"
        )
    sign_in_takes(password, "the password", max_chars=MAX_PASSWORD_CHARS, lines=True)
    database = Database(settings.database_url, max_size=1, transaction_pooling=settings.transaction_pooling)
    try:
        row = BoardStore(database).set_password(email, args.name, hash_password(password))
    finally:
        database.close()
    print(f"docjobs: {row['email']} (user {row['id']}) may sign in to the board as {', '.join(row['roles'])}")
    if row["sessions_ended"]:
        print(f"docjobs: signed out of {row['sessions_ended']} board session(s) with the old password")
    return 0


def _health(args: argparse.Namespace) -> int:
    from docjobs import health

    return health.run(args.role)


def _demo(args: argparse.Namespace) -> int:
    # The demo starts test servers and the Inngest emulator: they ship in docjobs-devkit, not docjobs.
    try:
        demo = importlib.import_module("docjobs_devkit.demo")
    except ModuleNotFoundError as exc:
        if exc.name is None or not exc.name.startswith("docjobs_devkit"):
            raise
        print("docjobs demo needs docjobs-devkit (make demo installs it)", file=sys.stderr)
        return 2
    status: int = demo.run_demo(once=args.once)
    return status


if __name__ == "__main__":
    sys.exit(main())
