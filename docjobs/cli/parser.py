"""The command line's parser, in one place: every command, its flags and their variables."""

from __future__ import annotations

import argparse

from docjobs.cli import board_users, oneshot, processes


def build_parser() -> argparse.ArgumentParser:
    """The ``docjobs`` command line: each command's flags, and the function that runs it."""
    parser = argparse.ArgumentParser(
        prog="docjobs", description="Background jobs of a document-signing service, on Dramatiq."
    )
    commands = parser.add_subparsers(title="commands")

    migrate = commands.add_parser("migrate", help="apply database migrations (safe to run concurrently)")
    migrate.set_defaults(run=oneshot.run_migrate)

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
    web.set_defaults(run=processes.run_web)

    worker = commands.add_parser(
        "worker", help="run a Dramatiq worker for docjobs' actors and yours (wraps the dramatiq command)"
    )
    worker.add_argument("modules", nargs="*", metavar="MODULE", help="your modules of actors to load")
    worker.add_argument("--processes", "-p", type=int, default=1, help="worker processes (default 1)")
    worker.add_argument(
        "--threads", "-t", type=int, help="threads per process [NEXT_PRIVATE_JOBS_CONCURRENCY, default 8]"
    )
    worker.add_argument("--queues", "-Q", nargs="*", help="only consume these queues")
    worker.set_defaults(run=processes.run_worker)

    scheduler = commands.add_parser(
        "scheduler", help="fire the cron table's schedules with periodiq (any number may run)"
    )
    scheduler.add_argument("modules", nargs="*", metavar="MODULE", help="your modules of actors to load")
    scheduler.add_argument(
        "--list", action="store_true", help="print each schedule with its last and next firing, then exit"
    )
    scheduler.set_defaults(run=processes.run_scheduler)

    trigger = commands.add_parser("trigger", help="enqueue one job")
    trigger.add_argument("job_id", metavar="JOB_ID", help="the job id, e.g. internal.seal-document")
    trigger.add_argument("payload", metavar="JSON", help="the camelCase payload, a JSON object")
    trigger.add_argument("--delay", type=float, metavar="SECONDS", help="start no sooner than this")
    trigger.add_argument("--id", help="deduplication key: a second trigger with the same id enqueues nothing")
    trigger.add_argument("--actors", nargs="*", default=[], metavar="MODULE", help="your modules of actors")
    trigger.set_defaults(run=oneshot.run_trigger)

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
    sync.set_defaults(run=oneshot.run_inngest_sync)

    admin = commands.add_parser("admin", help="the admin board's users")
    admin_commands = admin.add_subparsers(title="commands", required=True)
    create_user = admin_commands.add_parser(
        "create-user", help="make EMAIL an ADMIN who signs in to the board (reads the password from stdin)"
    )
    create_user.add_argument("email", metavar="EMAIL")
    create_user.add_argument("--name", help="the user's name, for a new user")
    create_user.set_defaults(run=board_users.run_create_user)

    verify = commands.add_parser(
        "verify",
        help="check a sealed PDF's signature: one line per finding; exit 0 valid, 1 not valid, 2 unreadable",
    )
    verify.add_argument("file", metavar="FILE.pdf", help="the sealed PDF")
    verify.add_argument(
        "--certificate",
        action="append",
        default=[],
        metavar="FILE",
        help=(
            "a certificate to trust (PEM, DER, or PKCS#12 without passphrase); repeatable [default: "
            "the signing certificate, NEXT_PRIVATE_SIGNING_LOCAL_FILE_PATH or "
            "NEXT_PRIVATE_SIGNING_LOCAL_FILE_CONTENTS, else the development one in "
            "NEXT_PRIVATE_JOBS_DATA_DIR, default .docjobs]"
        ),
    )
    verify.set_defaults(run=oneshot.run_verify)

    health = commands.add_parser(
        "health", help="liveness check of this container's web, worker or scheduler: exit 0 or 1, one line"
    )
    health.add_argument(
        "role", nargs="?", help="web, worker or scheduler (default: read from the container's command)"
    )
    health.set_defaults(run=oneshot.run_health)

    demo = commands.add_parser("demo", help="run the demo: PostgreSQL, web app, worker and a few jobs")
    demo.add_argument("--once", action="store_true", help="run the demo jobs to completion, then exit")
    demo.set_defaults(run=oneshot.run_demo)
    return parser
