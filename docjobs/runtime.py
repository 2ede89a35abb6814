"""The process's runtime: settings, database and broker, built once from Settings.

``docjobs.runtime:broker`` is what the ``dramatiq`` command line loads::

    dramatiq docjobs.runtime:broker docjobs.actors myapp.jobs

Nothing is read or opened at import time: the runtime is built on first use
(first send, first worker start) or explicitly with :func:`configure`. Until then
Dramatiq's global broker is docjobs' stand-in (``globalbroker``), so plain
``@dramatiq.actor`` actors land on docjobs' broker; once built, the runtime's
broker is the global one.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import dramatiq

from docjobs import errors, globalbroker, registry, secrets
from docjobs import logging as docjobs_logging
from docjobs.brokers.bullmq.broker import BullmqBroker
from docjobs.brokers.history import JobHistory
from docjobs.brokers.local.broker import LocalBroker
from docjobs.brokers.local.selftrigger import SelfTrigger
from docjobs.brokers.middleware import default_middleware
from docjobs.certificate_check import CertificateCheck
from docjobs.db.cron import CronLedger
from docjobs.db.domain import DomainStore
from docjobs.db.pool import Database
from docjobs.db.store import JobStore
from docjobs.mail.transport import Mailer
from docjobs.pdf.identity import SigningIdentity, load_identity
from docjobs.scheduler import table as cron_table
from docjobs.scheduler.firing import Firer, process_name
from docjobs.scheduler.guard import CronGuard
from docjobs.scheduler.inprocess import InProcessScheduler
from docjobs.scheduler.periodiq import PeriodiqWiring
from docjobs.settings import Settings

_lock = threading.RLock()
_current: Runtime | None = None


@dataclass
class Runtime:
    """What a process needs to send and run jobs."""

    settings: Settings
    broker: dramatiq.Broker
    cron: cron_table.CronTable
    database: Database | None = None
    ledger: CronLedger | None = None
    store: JobStore | None = None
    history: JobHistory | None = None
    domain: DomainStore = field(default_factory=DomainStore)
    mailer: Mailer | None = None
    _identity: SigningIdentity | None = field(default=None, repr=False)

    def signing_identity(self) -> SigningIdentity:
        """The certificate that seals documents, loaded (or, in development, made) on first use.

        Raises:
            errors.SettingsError: The certificate is missing or cannot be opened.
        """
        if self._identity is None:
            self._identity = load_identity(self.settings)
        return self._identity

    def require_database(self) -> Database:
        """The app's database, which the domain tables live in.

        Raises:
            errors.NotSupportedError: The provider has none.
        """
        if self.database is None:
            raise errors.NotSupportedError("this provider has no database for the domain tables")
        return self.database

    def join(self, queue_name: str = "default", *, timeout_seconds: float = 30.0) -> None:
        """Wait until ``queue_name`` is empty, the jobs its jobs send included, and their history written.

        Raises:
            dramatiq.errors.QueueJoinTimeout: Jobs are left after ``timeout_seconds``.
        """
        self.broker.join(queue_name, timeout=int(timeout_seconds * 1000))
        if self.history is not None:
            self.history.flush()

    def in_process_scheduler(self) -> InProcessScheduler:
        """A scheduler thread for this process (``docjobs web`` starts one).

        Raises:
            errors.NotSupportedError: The provider has no database for the cron ledger.
        """
        if self.ledger is None:
            raise errors.NotSupportedError("this provider has no database for the cron ledger")
        firer = Firer(self.broker, self.ledger, fired_by=process_name("in-process"))
        return InProcessScheduler(self.cron, firer)

    def close(self) -> None:
        """Stop the broker's threads and close connections; safe to call twice."""
        self.broker.close()
        if self.history is not None:
            self.history.close()
        if self.store is not None:
            self.store.database.close()
        if self.database is not None:
            self.database.close()


def build(settings: Settings) -> Runtime:
    """Build the runtime of the configured provider (without binding it globally).

    Raises:
        errors.SettingsError: A secret the provider needs is missing.
        errors.NotSupportedError: The provider is not available in this version.
    """
    if settings.provider == "inngest":
        built = _build_inngest(settings)
        globalbroker.own(built.broker)
        return built
    assert settings.database_url is not None  # checked by Settings
    cron = cron_table.build(settings)
    # One pool per process, within NEXT_PRIVATE_JOBS_DB_POOL_SIZE (docs/operations.md).
    database = Database.from_settings(settings, listen=settings.provider == "local")
    ledger = CronLedger(database)
    # The app's transactions keep their durability; docjobs' own writes (standalone
    # enqueues, claims, acks, history) may skip the WAL flush wait, see the settings.
    store = JobStore(database.for_own_writes())
    middleware = default_middleware(
        max_retries=settings.retries,
        min_backoff_seconds=settings.min_backoff_seconds,
        max_backoff_seconds=settings.max_backoff_seconds,
        max_payload_bytes=settings.max_payload_bytes,
        guards=[CronGuard(cron, ledger)],
        extra=[PeriodiqWiring(cron), globalbroker.ForeignActorCheck()],
    )
    history = None
    broker: dramatiq.Broker
    if settings.provider == "bullmq":
        assert settings.redis_url is not None  # checked by Settings
        # First, so its after-hooks see the retry policy's decision.
        history = JobHistory(store, default_max_retries=settings.retries)
        broker = BullmqBroker(
            settings.redis_url,
            namespace=settings.redis_prefix,
            middleware=[history, *middleware],
            heartbeat_timeout_seconds=settings.lease_seconds,
            idle_poll_seconds=settings.poll_interval_seconds,
            store=store,
            retention_days=settings.retention_days,
        )
        broker.ping()
    else:
        broker = LocalBroker(
            store,
            middleware=middleware,
            poll_interval_seconds=settings.poll_interval_seconds,
            lease_seconds=settings.lease_seconds,
            max_retries=settings.retries,
            listen=database.listens,
            self_trigger=SelfTrigger(self_trigger_base_url(settings), secrets.secondary_key(settings)),
            retention_days=settings.retention_days,
        )
    current = Runtime(
        settings=settings,
        broker=broker,
        cron=cron,
        database=database,
        ledger=ledger,
        store=store,
        history=history,
        mailer=Mailer(settings),
    )
    # Only a process that would run a signing job needs the certificate (see certificate_check).
    broker.add_middleware(CertificateCheck(settings, current.signing_identity))
    globalbroker.own(broker)
    return current


def self_trigger_base_url(settings: Settings) -> str:
    """The internal URL plus the base path, unless the URL already ends with it.

    The reference relies on the internal URL already containing the base path and
    breaks silently when it does not; here either form works.
    """
    url = settings.internal_url
    if settings.base_path and not urlsplit(url).path.rstrip("/").endswith(settings.base_path):
        url += settings.base_path
    return url


def install(runtime: Runtime) -> Runtime:
    """Make ``runtime`` the process's runtime, closing the previous one."""
    global _current
    # Whoever configured the handlers (our CLI, the dramatiq CLI, the app), the
    # setting decides how chatty docjobs is: INFO logs each job's start and end.
    logging.getLogger("docjobs").setLevel(runtime.settings.log_level)
    # And their lines are redacted and one line each, under our handlers or theirs.
    docjobs_logging.protect()
    with _lock:
        previous, _current = _current, runtime
        globalbroker.adopt(runtime.broker)
        registry.bind_all(runtime.broker)
    if previous is not None and previous is not runtime:
        previous.close()
    return runtime


def configure(settings: Settings | None = None) -> Runtime:
    """Build the runtime from ``settings`` (the environment when omitted) and install it."""
    return install(build(settings or Settings.from_environ()))


def current() -> Runtime:
    """The process's runtime, configured from the environment on first use."""
    with _lock:
        if _current is None:
            return configure()
        return _current


def get_broker() -> dramatiq.Broker:
    """The process's broker."""
    return current().broker


def reset() -> None:
    """Close and forget the runtime (tests)."""
    global _current
    with _lock:
        previous, _current = _current, None
        registry.bind_all(None)
        globalbroker.release()
    if previous is not None:
        previous.close()


def __getattr__(name: str) -> dramatiq.Broker:
    # `dramatiq docjobs.runtime:broker` reads this attribute; building the broker
    # lazily keeps importing the module free of side effects.
    if name == "broker":
        return get_broker()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _build_inngest(settings: Settings) -> Runtime:
    """Inngest runs the jobs; this process sends events and serves the functions."""
    from docjobs.brokers.inngest.broker import InngestBroker
    from docjobs.brokers.inngest.client import inngest_client

    database = store = history = None
    if settings.database_url is not None:
        database = Database.from_settings(settings)
        store = JobStore(database)
        history = JobHistory(store, default_max_retries=settings.retries)
    # The stack is the other providers' so actors declare the same options; only
    # its send-side hooks run here (Inngest runs the jobs and retries them, and
    # fires the table's schedules, the app's periodic= ones included).
    cron = cron_table.build(settings)
    middleware = default_middleware(
        max_retries=settings.retries,
        min_backoff_seconds=settings.min_backoff_seconds,
        max_backoff_seconds=settings.max_backoff_seconds,
        max_payload_bytes=settings.max_payload_bytes,
        extra=[PeriodiqWiring(cron)],
    )
    current = Runtime(
        settings=settings,
        broker=InngestBroker(
            inngest_client(settings),
            middleware=[history, *middleware] if history else middleware,
            store=store,
            history=history,
        ),
        cron=cron,
        database=database,
        store=store,
        history=history,
        mailer=Mailer(settings),
    )
    # Inngest calls this process to run every job: `create_app` checks the certificate.
    return current
