"""docjobs: the background-job runtime of a document-signing service."""

from docjobs.errors import ActorNotFound, DocjobsError, PayloadError, SettingsError
from docjobs.registry import JobActor, actor
from docjobs.settings import Settings
from docjobs.tasks import run_task

__all__ = [
    "ActorNotFound",
    "DocjobsError",
    "JobActor",
    "PayloadError",
    "Settings",
    "SettingsError",
    "actor",
    "run_task",
]
__version__ = "0.1.0"
