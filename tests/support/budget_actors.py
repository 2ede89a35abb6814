"""An actor that holds one of its process's pooled connections for a while (the budget tests' load)."""

from __future__ import annotations

import docjobs
from docjobs import db


@docjobs.actor("test.pooled_work", display_name="Pooled Work")
def pooled_work_job(*, seconds: float) -> None:
    """Spend ``seconds`` inside a transaction on the runtime's pool, as an app's job does."""
    with db.transaction() as conn:
        conn.execute("SELECT pg_sleep(%s)", (seconds,))
