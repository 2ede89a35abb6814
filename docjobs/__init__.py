"""docjobs: the background-job runtime of a document-signing service.

Importing it makes docjobs' broker Dramatiq's global broker (see ``globalbroker``):
plain ``@dramatiq.actor`` actors declared afterwards are docjobs' jobs. Nothing is
read or opened until the first send or worker start.
"""

from docjobs import globalbroker
from docjobs.errors import (
    ActorNotFound,
    DocjobsError,
    ForeignActor,
    PayloadError,
    ScheduleError,
    SettingsError,
)
from docjobs.registry import JobActor, actor
from docjobs.scheduler.declared import add_schedule, remove_schedule
from docjobs.settings import Settings
from docjobs.tasks import run_task

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
    "remove_schedule",
    "run_task",
]
__version__ = "0.1.0"
