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

import importlib
import logging
import pickle
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import dramatiq

from docjobs import context, errors, globalbroker, registry, startup
from docjobs import logging as docjobs_logging
from docjobs.brokers.base import Broker, SharedParts
from docjobs.brokers.history import JobHistory
from docjobs.brokers.joblogs import JobLogWriter
from docjobs.brokers.middleware import JobLog, default_middleware
from docjobs.certificate_check import CertificateCheck
from docjobs.db.board import BoardStore
from docjobs.db.cron import CronLedger
from docjobs.db.domain import DomainStore
from docjobs.db.pool import Database
from docjobs.db.store import JobStore
from docjobs.flow.gate import FlowGate
from docjobs.mail.transport import Mailer
from docjobs.scheduler import table as cron_table
from docjobs.scheduler.firing import Firer, process_name
from docjobs.scheduler.guard import CronGuard
from docjobs.scheduler.inprocess import InProcessScheduler
from docjobs.scheduler.periodiq import PeriodiqWiring
from docjobs.settings import Settings

if TYPE_CHECKING:
    from docjobs.pdf.identity import SigningIdentity

_lock = threading.RLock()
_current: Runtime | None = None

#: The longest the signing certificate's boot check may take in its own process, in seconds.
CERTIFICATE_CHECK_TIMEOUT_SECONDS = 60.0
#: The check's exit status when the certificate is refused (its one line is on stdout).
_CERTIFICATE_REFUSED_STATUS = 3
#: Run by ``python -c``: load the certificate of the pickled settings read from stdin.
_CHECK_CERTIFICATE = f"""
import pickle, sys
from docjobs import errors
from docjobs.pdf.identity import load_identity
try:
    load_identity(pickle.load(sys.stdin.buffer))
except errors.SettingsError as exc:
    print(exc)
    sys.exit({_CERTIFICATE_REFUSED_STATUS})
"""


@dataclass
class Runtime:
    """What a process needs to send and run jobs."""

    settings: Settings
    broker: Broker
    cron: cron_table.CronTable
    database: Database | None = None
    ledger: CronLedger | None = None
    store: JobStore | None = None
    history: JobHistory | None = None
    domain: DomainStore = field(default_factory=DomainStore)
    mailer: Mailer | None = None
    _identity: SigningIdentity | None = field(default=None, repr=False)
    #: The certificate opened in a process of its own (``check_signing_identity``): once is enough.
    _certificate_checked: bool = field(default=False, repr=False)

    def signing_identity(self) -> SigningIdentity:
        """The certificate that seals documents, loaded (or, in development, made) on first use.

        Raises:
            errors.SettingsError: The certificate is missing or cannot be opened.
        """
        if self._identity is None:
            # Imported here: pyHanko and cryptography weigh ~40 MiB, which only a
            # process that seals (or checks the certificate at boot) should carry.
            from docjobs.pdf.identity import load_identity

            self._identity = load_identity(self.settings)
        return self._identity

    def check_signing_identity(self) -> None:
        """Check the certificate opens, as a worker does at boot, without keeping its libraries.

        pyHanko and cryptography would add ~30 MiB to every worker process for a check,
        so unless this process has them loaded already (then the identity is kept for the
        first seal) the certificate is loaded by a short-lived process (issue 21).

        Raises:
            errors.SettingsError: The certificate is missing or cannot be opened (one line).
        """
        if self._identity is not None or "pyhanko" in sys.modules:
            self.signing_identity()
            return
        if not self._certificate_checked:
            # `docjobs web` checks when it builds the app, then its embedded worker at boot.
            _check_certificate_elsewhere(self.settings)
            self._certificate_checked = True

    def require_database(self) -> Database:
        """The app's database, which the domain tables live in.

        Raises:
            errors.NotSupportedError: The provider has none.
        """
        if self.database is None:
            raise errors.NotSupportedError("this provider has no database for the domain tables")
        return self.database

    def join(self, queue_name: str | None = None, *, timeout_seconds: float = 30.0) -> None:
        """Wait until ``queue_name`` (every declared queue when None) is empty, the jobs its
        jobs send included, and their history written.

        A job of one queue may send to another already joined (a seal sends emails): every
        queue is joined once more per queue, which costs one count each when empty.

        Raises:
            dramatiq.errors.QueueJoinTimeout: Jobs are left after ``timeout_seconds``.
        """
        deadline = time.monotonic() + timeout_seconds
        names = [queue_name] if queue_name is not None else sorted(self.broker.get_declared_queues())
        for _ in range(len(names)):
            for name in names:
                left_ms = max(int((deadline - time.monotonic()) * 1000), 1)
                self.broker.join(name, timeout=left_ms)
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


#: The providers by name: module and class, imported on first use, so ``import docjobs``
#: stays cheap and the Inngest SDK loads only on inngest.
PROVIDER_CLASSES: dict[str, tuple[str, str]] = {
    "local": ("docjobs.brokers.local.broker", "LocalBroker"),
    "bullmq": ("docjobs.brokers.bullmq.broker", "BullmqBroker"),
    "inngest": ("docjobs.brokers.inngest.broker", "InngestBroker"),
    "stub": ("docjobs.brokers.stub", "StubBroker"),
}


def _check_certificate_elsewhere(settings: Settings) -> None:
    # The settings travel by pipe (never argv or the environment, where other users may read them).
    try:
        done = subprocess.run(
            [sys.executable, "-c", _CHECK_CERTIFICATE],
            input=pickle.dumps(settings),
            capture_output=True,
            timeout=CERTIFICATE_CHECK_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise errors.SettingsError(
            f"checking the signing certificate took more than {CERTIFICATE_CHECK_TIMEOUT_SECONDS:g} s"
        ) from None
    if done.returncode == _CERTIFICATE_REFUSED_STATUS:
        raise errors.SettingsError(done.stdout.decode(errors="replace").strip())
    if done.returncode != 0:
        # Its traceback stays out of the message: it could quote the settings.
        raise errors.SettingsError(f"checking the signing certificate failed (exit status {done.returncode})")


def provider_class(name: str) -> type[Broker]:
    """The broker class of the provider called ``name`` (``NEXT_PRIVATE_JOBS_PROVIDER``).

    Raises:
        errors.SettingsError: No provider has that name.
    """
    try:
        module, attribute = PROVIDER_CLASSES[name]
    except KeyError:
        known = ", ".join(PROVIDER_CLASSES)
        raise errors.SettingsError(f"no provider is called {name!r}; there are {known}") from None
    found = getattr(importlib.import_module(module), attribute)
    assert isinstance(found, type) and issubclass(found, Broker)
    return found


def build(settings: Settings) -> Runtime:
    """Build the runtime of the configured provider (without binding it globally).

    The shared parts are built once, as the provider's capabilities ask: the
    database when one is set, the cron ledger and its guard where docjobs fires the
    schedules, the worker-side checks where workers run jobs, the job history
    first in the stack where the provider keeps one. Then the provider's broker.

    Raises:
        errors.SettingsError: A secret the provider needs is missing.
        dramatiq.errors.BrokerConnectionError: The provider's server does not answer.
    """
    cls = provider_class(settings.provider)
    capabilities = cls.capabilities_for(settings)
    cron = cron_table.build(settings)
    database = ledger = store = history = job_rows = None
    if settings.database_url is not None:
        # One pool per process, within NEXT_PRIVATE_JOBS_DB_POOL_SIZE (docs/operations.md).
        database = Database.from_settings(settings, listen=cls.name == "local")
        # The app's transactions keep their durability; docjobs' own writes where workers
        # make them (claims, acks, history) skip the WAL flush wait, its enqueues do not
        # unless the settings say so (docs/reliability.md, "Which writes are durable").
        store = JobStore.over(database.for_own_writes() if capabilities.workers else database)
        job_rows = BoardStore(database)
        if capabilities.scheduler:
            ledger = CronLedger(database)
        if cls.keeps_history:
            history = JobHistory(store, default_max_retries=settings.retries)
    # Inngest runs the jobs and retries them (and fires the schedules): there only the
    # stack's send-side hooks run, but actors declare the same options everywhere.
    middleware = default_middleware(
        max_retries=settings.retries,
        min_backoff_seconds=settings.min_backoff_seconds,
        max_backoff_seconds=settings.max_backoff_seconds,
        max_payload_bytes=settings.max_payload_bytes,
        task_store=store.tasks if store is not None and capabilities.workers else None,
        guards=[CronGuard(cron, ledger)] if ledger is not None else [],
        extra=[PeriodiqWiring(cron), globalbroker.ForeignActorCheck()]
        if capabilities.workers
        else [PeriodiqWiring(cron)],
    )
    if history is not None:
        middleware = [history, *middleware]  # first, so its after-hooks see the retry policy's decision
    if store is not None:
        middleware.append(JobLogWriter(store.logs))  # docjobs.log_line and set_progress (issue 22)
    parts = SharedParts(
        database=database, store=store, middleware=middleware, history=history, cron=cron, job_rows=job_rows
    )
    broker = cls.from_settings(settings, parts)
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
    flow = broker.flow_store() if capabilities.workers else None
    if flow is not None:
        # Docjobs' workers honour flow control themselves (Inngest does on its side): after the
        # retry policy and the task context, before the log line of a job's start.
        broker.add_middleware(FlowGate(flow), before=JobLog)
    if capabilities.workers:
        # Only a process that would run a signing job needs the certificate (see certificate_check);
        # on inngest, where Inngest calls the app to run every job, `create_app` checks it.
        broker.add_middleware(CertificateCheck(settings, current.check_signing_identity))
    globalbroker.own(broker)
    return current


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
        context.bind(runtime)
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


def get_broker() -> Broker:
    """The process's broker."""
    return current().broker


def reset() -> None:
    """Close and forget the runtime (tests)."""
    global _current
    with _lock:
        previous, _current = _current, None
        context.unbind()
        registry.bind_all(None)
        globalbroker.release()
    if previous is not None:
        previous.close()


def command_line_broker() -> Broker:
    """The broker of a process the ``dramatiq`` or ``periodiq`` command started.

    The runtime is built once the database answers with docjobs' schema (and, on
    bullmq, Redis does), waiting with backoff while they are down; what no retry fixes
    (a bad setting, no schema) is one line and exit status 2, not a traceback.
    """

    def start() -> Broker:
        with _lock:
            if _current is not None:
                return _current.broker
        return startup.wait_until_ready(Settings.from_environ(), configure).broker

    return startup.command_line(start)


def __getattr__(name: str) -> dramatiq.Broker:
    # `dramatiq docjobs.runtime:broker` reads this attribute; building the broker
    # lazily keeps importing the module free of side effects.
    if name == "broker":
        return command_line_broker()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
