"""docjobs: the background-job runtime of a document-signing service.

Importing it makes docjobs' broker Dramatiq's global broker (see ``globalbroker``):
plain ``@dramatiq.actor`` actors declared afterwards are docjobs' jobs. Nothing is
read or opened until the first send or worker start.

This module is the composition root beside ``runtime``: the layers below the runtime
reach it through ``context``, whose factory is registered here.
"""

from docjobs import context, globalbroker
from docjobs.errors import (
    ActorNotFound,
    DocjobsError,
    ForeignActor,
    PayloadError,
    ScheduleError,
    SettingsError,
)
from docjobs.joblogs import log_line, set_progress
from docjobs.registry import JobActor, actor
from docjobs.scheduler.declared import add_schedule, remove_schedule
from docjobs.settings import Settings
from docjobs.tasks import run_task


def _runtime_from_environ() -> context.Services:
    """The runtime, configured from the environment on first use (imported late: it builds every layer)."""
    from docjobs import runtime

    return runtime.current()


context.set_factory(_runtime_from_environ)
globalbroker.adopt()

__all__ = [
    "ActorNotFound",
    "DocjobsError",
    "ForeignActor",
    "JobActor",
    "PayloadError",
    "ScheduleError",
    "Settings",
    "SettingsError",
    "actor",
    "add_schedule",
    "log_line",
    "remove_schedule",
    "run_task",
    "set_progress",
]
__version__ = "0.1.0"
