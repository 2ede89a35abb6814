"""The domain store: the only code that runs the domain's queries (``domain.sql``).

Every method takes the connection to run on, so a flow can do several steps in one
transaction (``with database.transaction() as conn``) and a job can run one step
on a pooled connection. The store is put together from one part per table group
(``users``, ``documents``, ``recipients``, ``webhooks``, ``organisations``), each a class over ``queries``.
"""

from __future__ import annotations

from docjobs.db.domain.documents import DocumentQueries
from docjobs.db.domain.organisations import OrganisationQueries
from docjobs.db.domain.queries import CLEANUP_BATCH, Row
from docjobs.db.domain.recipients import RecipientQueries
from docjobs.db.domain.templates import TemplateQueries
from docjobs.db.domain.users import UserQueries
from docjobs.db.domain.webhooks import WebhookQueries

__all__ = ["CLEANUP_BATCH", "DomainStore", "Row"]


class DomainStore(
    UserQueries, DocumentQueries, RecipientQueries, WebhookQueries, TemplateQueries, OrganisationQueries
):
    """Reads and writes users, documents, recipients, fields, audit logs, webhooks, templates and
    organisations."""
