"""The commands that do one thing and exit: migrate, trigger, inngest sync, health, demo."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from docjobs import errors, strictjson
from docjobs import logging as docjobs_logging
from docjobs.cli.actors import load_actor_modules
from docjobs.settings import Settings
from docjobs.settings_values import http_url

if TYPE_CHECKING:
    from asn1crypto import x509 as asn1_x509


def run_migrate(args: argparse.Namespace) -> int:
    """``docjobs migrate``: apply the database migrations not applied yet."""
    from docjobs.db import pool
    from docjobs.db.migrate import migrate

    docjobs_logging.configure()
    settings = Settings.from_environ(secrets=False)  # migrating needs no signing or encryption key
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
        if args.id is None:
            print(jobs.trigger(args.job_id, payload, delay=args.delay).message_id)
        elif jobs.trigger_once(args.job_id, payload, id=args.id, delay=args.delay):
            print(args.id)
        else:
            # Exit 0: what --id asks for, one job with this id, holds (a retried deploy step succeeds).
            print(f"docjobs: nothing enqueued: a job with id {args.id!r} exists", file=sys.stderr)
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


#: ``docjobs verify``'s exit codes: the signature is valid, it is not, the file cannot be read.
EXIT_VALID, EXIT_NOT_VALID, EXIT_UNREADABLE = 0, 1, 2
#: The settings ``docjobs verify`` reads: where the signing certificate is, nothing else.
VERIFY_SETTINGS = ("signing_file_path", "signing_file_contents", "signing_passphrase", "data_dir")


def run_verify(args: argparse.Namespace) -> int:
    """``docjobs verify FILE.pdf``: check a sealed PDF's signature, one line per finding."""
    import logging

    from docjobs.pdf import verify

    docjobs_logging.configure("WARNING")
    # pyHanko logs each failed check with its traceback: the findings below say it in a line.
    logging.getLogger("pyhanko").setLevel(logging.CRITICAL)
    name = args.file
    try:
        pdf = Path(name).read_bytes()  # the file first: a wrong name is the likeliest mistake
    except OSError as exc:
        print(f"docjobs: error: {name}: cannot read: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_UNREADABLE
    trusted, source = _trusted_certificates(args.certificate)
    try:
        verification = verify.verify(pdf, trusted)
    except verify.Unreadable as exc:
        print(f"docjobs: error: {name}: {exc}", file=sys.stderr)
        return EXIT_UNREADABLE
    except verify.NotSigned:
        print(f"{name}: NOT signed")
        return EXIT_NOT_VALID
    for finding in verification.findings(source):
        print(f"{name}: {finding}")
    print(f"{name}: {'VALID' if verification.ok else 'NOT VALID'}")
    return EXIT_VALID if verification.ok else EXIT_NOT_VALID


def _trusted_certificates(paths: Sequence[str]) -> tuple[list[asn1_x509.Certificate], str]:
    """The certificates ``docjobs verify`` trusts, and what they came from.

    Raises:
        errors.SettingsError: A file cannot be read, or (none given) the configured certificate.
    """
    from docjobs.pdf import verify
    from docjobs.pdf.identity import DEV_CERTIFICATE_FILE, load_identity

    if paths:
        trusted = []
        for path in paths:
            try:
                trusted += verify.read_certificates(Path(path).read_bytes())
            except OSError as exc:
                reason = exc.strerror or str(exc)
                raise errors.SettingsError(f"--certificate {path}: cannot read: {reason}") from None
            except verify.Unreadable as exc:
                raise errors.SettingsError(f"--certificate {path}: {exc}") from None
        return trusted, ", ".join(paths)
    given = "(or give the certificate to trust: --certificate FILE)"
    # Only what verifying uses: no database URL, provider or production secret is asked for.
    settings = Settings.only(VERIFY_SETTINGS)
    if settings.signing_file_contents is not None or settings.signing_file_path is not None:
        try:
            identity = load_identity(settings)
        except errors.SettingsError as exc:
            raise errors.SettingsError(f"{exc} {given}") from None
        return [identity.certificate], "the configured signing certificate"
    # The one the demo and development made, whatever NODE_ENV says now (a fresh shell has
    # none); never a new one, which would have signed nothing.
    development = Path(settings.data_dir) / DEV_CERTIFICATE_FILE
    try:
        return verify.read_certificates(
            development.read_bytes()
        ), f"the development certificate {development}"
    except FileNotFoundError:
        raise errors.SettingsError(
            "no certificate to trust: NEXT_PRIVATE_SIGNING_LOCAL_FILE_PATH and "
            f"NEXT_PRIVATE_SIGNING_LOCAL_FILE_CONTENTS are unset, and {development} does not exist "
            f"(NEXT_PRIVATE_JOBS_DATA_DIR) {given}"
        ) from None
    except (OSError, verify.Unreadable) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise errors.SettingsError(
            f"{development}: cannot read the development certificate: {reason}"
        ) from None


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
