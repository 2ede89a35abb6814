"""What the signing service's server code does around the jobs: send, open, sign, reject, cancel, delete.

Each flow runs in one transaction and enqueues its jobs and webhooks inside it,
so they exist exactly when the change they announce does (the reference enqueues
after or outside its transactions; its issue #1732 shows jobs running before the
write they depend on). The demo and the tests drive the service through these.
"""

from __future__ import annotations

from docjobs.domain.accounts import AccountFlows
from docjobs.domain.documents import DocumentFlows
from docjobs.domain.organisations import OrganisationFlows
from docjobs.domain.signing import SigningFlows
from docjobs.domain.templates import TemplateFlows


class Flows(AccountFlows, TemplateFlows, DocumentFlows, SigningFlows, OrganisationFlows):
    """The flows, over the runtime's database: an account's, a template's, an owner's, a recipient's,
    an organisation's."""
