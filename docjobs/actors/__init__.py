"""docjobs' own job types. Importing this package declares every actor.

- emails: the email jobs (signing requests, completions, rejections, accounts);
- webhooks: ``internal.execute-webhook``;
- maintenance: the sweeps, their per-recipient jobs, and the cleanups;
- sealing: ``internal.seal-document``;
- templates: ``internal.bulk-send-template`` and the direct-template email.
"""

from docjobs.actors import emails, maintenance, sealing, templates, webhooks

__all__ = ["emails", "maintenance", "sealing", "templates", "webhooks"]
