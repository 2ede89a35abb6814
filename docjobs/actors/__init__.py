"""docjobs' own job types. Importing this package declares every actor.

- emails: the email jobs (signing requests, completions, rejections, accounts);
- webhooks: ``internal.execute-webhook``;
- maintenance: the sweeps, their per-recipient jobs, and the cleanups;
- sealing: ``internal.seal-document``;
- rollups: ``internal.rollup-job-history``, the board's history beyond retention.
"""

from docjobs.actors import emails, maintenance, rollups, sealing, webhooks

__all__ = ["emails", "maintenance", "rollups", "sealing", "webhooks"]
