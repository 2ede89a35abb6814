"""Which processes need the signing certificate: those that would run a job that signs.

In production a process that would run a signing job refuses to start without a
certificate, in one line naming the variables: failing at start-up, not in every
seal job, avoids the reference's documents stuck PENDING. A process that only
sends jobs starts without one: ``docjobs trigger``, ``docjobs scheduler``, an
app's process calling ``jobs.trigger``, ``docjobs web --no-worker`` on local or
bullmq, a worker whose ``--queues`` leave the signing jobs out. On inngest the web
process runs every job (Inngest calls it), so it needs the certificate.

Checked twice: by ``docjobs worker`` and ``docjobs web`` before they start (one
line, exit 2), and by :class:`CertificateCheck` when any Dramatiq worker boots, for
workers started another way (``dramatiq docjobs.runtime:broker ...``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any

import dramatiq
from dramatiq.common import q_name
from dramatiq.middleware import MiddlewareError

from docjobs import errors
from docjobs.settings import Settings

#: The jobs that sign with the certificate.
SIGNING_JOB_IDS = frozenset({"internal.seal-document"})


class CertificateMissing(errors.SettingsError, MiddlewareError):
    """A worker that would run a signing job has no usable signing certificate."""


def signing_jobs(actors: Mapping[str, Any], queues: Collection[str] | None) -> list[str]:
    """The signing jobs among ``actors`` that a consumer of ``queues`` would run.

    Args:
        actors: Declared actors by name (anything with a ``queue_name``).
        queues: The queues consumed; ``None`` for every queue.
    """
    consumed = None if queues is None else {q_name(queue) for queue in queues}
    return sorted(
        name
        for name, actor in actors.items()
        if name in SIGNING_JOB_IDS and (consumed is None or q_name(actor.queue_name) in consumed)
    )


def require_certificate(
    settings: Settings,
    load: Callable[[], object],
    actors: Mapping[str, Any],
    queues: Collection[str] | None = None,
) -> None:
    """Load the certificate if this process would run a signing job, in production.

    In development there is nothing to check: a certificate is made on first use.

    Args:
        load: Loads (and keeps) the certificate: ``Runtime.signing_identity`` or ``load_identity``.

    Raises:
        errors.SettingsError: The certificate is missing or cannot be opened (one line).
    """
    if settings.is_development or not signing_jobs(actors, queues):
        return
    load()


class CertificateCheck(dramatiq.Middleware):
    """Refuse to boot a worker that would run a signing job without a certificate.

    Args:
        settings: The process's settings.
        load: Loads (and keeps) the certificate.
    """

    def __init__(self, settings: Settings, load: Callable[[], object]) -> None:
        self.settings = settings
        self.load = load

    def before_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        try:
            # Dramatiq keeps `--queues` as the consumer whitelist (falsy: every queue).
            queues = worker.consumer_whitelist or None
            require_certificate(self.settings, self.load, broker.actors, queues)
        except errors.SettingsError as exc:
            # A MiddlewareError stops the worker's start; any other error would be logged and ignored.
            raise CertificateMissing(str(exc)) from None
