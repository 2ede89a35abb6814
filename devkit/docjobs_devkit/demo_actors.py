"""Demo jobs. The real job types (emails, sealing, webhooks) live in ``docjobs.actors``."""

from __future__ import annotations

import logging

import dramatiq
from dramatiq.middleware import CurrentMessage

import docjobs

logger = logging.getLogger(__name__)


@docjobs.actor("demo.greet", display_name="Greet")
def greet(*, name: str, greeting: str = "Hello") -> None:
    """Log a greeting."""
    logger.info("%s, %s!", greeting, name)


@docjobs.actor("demo.flaky", display_name="Flaky", min_backoff=200, max_backoff=1000)
def flaky(*, failures: int = 1) -> None:
    """Fail the first ``failures`` attempts, then succeed: shows retries with backoff.

    It fails with :class:`dramatiq.Retry`, the way to say a failure is expected: it
    is retried with the same backoff, and logged in one line, not with a traceback.
    """
    message = CurrentMessage.get_current_message()
    attempt = int(message.options.get("retries", 0)) + 1 if message else 1
    if attempt <= failures:
        raise dramatiq.Retry(f"attempt {attempt} fails on purpose")
    logger.info("Succeeded on attempt %d.", attempt)


@docjobs.actor("demo.steps", display_name="Two Steps")
def steps(*, document_id: int) -> None:
    """Two memoised steps: a retry would skip the first one."""
    pages = docjobs.run_task("count-pages", lambda: document_id * 3)
    docjobs.run_task("log-pages", lambda: logger.info("Document %d has %d pages.", document_id, pages))
