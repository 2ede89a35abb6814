"""docjobs' own job types. Importing this package declares every actor.

- emails: the email jobs (signing requests, completions, rejections, accounts);
- webhooks: ``internal.execute-webhook``;
- maintenance: the sweeps, their per-recipient jobs, and the cleanups;
- sealing: ``internal.seal-document``;
- templates: ``internal.bulk-send-template`` and the direct-template email;
- organisations: the organisation and team emails, and ``internal.admin-delete-organisation``;
- rollups: ``internal.rollup-job-history``, the board's history beyond retention.
"""

from docjobs.actors import emails, maintenance, organisations, rollups, sealing, templates, webhooks

__all__ = ["emails", "maintenance", "organisations", "rollups", "sealing", "templates", "webhooks"]
