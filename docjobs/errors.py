"""The exceptions docjobs raises.

Every error derives from :class:`DocjobsError`. Where a caller would naturally
catch a builtin, the error also inherits it (a bad setting is a ``ValueError``).
An exception's docstring is its default message.
"""

from __future__ import annotations


class DocjobsError(Exception):
    """A docjobs error occurred."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())


class SettingsError(DocjobsError, ValueError):
    """A setting read from the environment is missing or invalid."""


class PayloadError(DocjobsError, ValueError):
    """A job payload does not match the job's payload model.

    Attributes:
        job_id: The job (actor) the payload was meant for.
        field: The dotted camelCase path of the first offending field, or ``None``
            when the payload as a whole is wrong (not an object, say).
    """

    def __init__(self, message: str, *, job_id: str, field: str | None = None) -> None:
        super().__init__(message)
        self.job_id = job_id
        self.field = field


class SendError(DocjobsError, ValueError):
    """A send's options (its delay, say) are not acceptable; nothing was enqueued."""


class NotRetryable(DocjobsError):
    """The job failed in a way another attempt cannot fix."""


class ActorNotFound(DocjobsError, LookupError):
    """No actor is registered under that job id."""


class ForeignActor(ActorNotFound):
    """The actor is bound to a broker that is not docjobs' (issue 18): its jobs would go elsewhere."""


class ScheduleError(DocjobsError, ValueError):
    """An app's schedule is not acceptable (a bad expression, payload or job id)."""


class NotSupportedError(DocjobsError):
    """The configured provider does not support this operation."""


class MigrationError(DocjobsError):
    """A database migration could not be applied."""


class BrokerError(DocjobsError):
    """The job broker failed."""


class BrokerConnectionError(BrokerError):
    """The job broker's server (Redis, say) could not be reached."""


class TaskError(DocjobsError):
    """A memoised task of a job failed."""


class TaskOutsideJob(TaskError, RuntimeError):
    """run_task() was called outside a running job."""


class TaskExceededRetries(TaskError):
    """The task exceeded its retries; the job fails without further attempts."""


class ServiceError(DocjobsError, RuntimeError):
    """A server process (PostgreSQL, Redis) could not be started."""


class JobLogError(NotRetryable, ValueError):
    """A log line or progress value cannot be recorded as it is (another attempt would fail alike)."""


class JobLogOutsideJob(DocjobsError, RuntimeError):
    """log_line() or set_progress() was called outside a running job."""


#: Failures that another attempt cannot fix: the job fails at once (the retry policy and
#: the actors' held-error checks read this one list).
NON_RETRYABLE: tuple[type[BaseException], ...] = (PayloadError, TaskExceededRetries, NotRetryable)
