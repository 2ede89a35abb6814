"""How ``internal.admin-delete-organisation`` removes an organisation and all it owns.

The delete runs :data:`STEPS` in order, children before parents, so no cascade
deletes more than a batch: every transaction deletes at most
:data:`DELETE_BATCH_ROWS` rows. Documents and templates go a chunk at a time, each
chunk with everything under it, so no batch scans again what earlier ones emptied
and the delete stays linear in the organisation's size. Thousands of documents never
make one long transaction that holds locks and bloats the WAL.

Each step runs in rounds of at most :data:`ROUND_TRANSACTIONS` transactions, each
round a memoised task: a huge organisation is many short tasks, each well within a
worker's time limit and an Inngest step's, rather than one that runs for minutes. A
worker that dies mid-way loses at most its current round's unfinished batch: the job
run again skips the finished rounds and steps, and deletes what is left.

Documents still out for signing (PENDING, not deleted) are not deleted: they are
taken out of the organisation's teams and stay with their owner, as the reference
orphans its envelopes. Their recipients hold live signing links, and the seal,
reminders and completion emails still due on them go on working; deleting them
would silently break the signing for people outside the organisation.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from docjobs import errors
from docjobs.actors import _support as support
from docjobs.db.domain import DomainStore
from docjobs.db.domain.organisations import DOCUMENT_CHILDREN
from docjobs.db.pool import Connection

#: Rows one transaction of the delete removes at most.
DELETE_BATCH_ROWS = 500
#: Documents deleted together: each takes up to two PDFs with it, so their last
#: transaction stays within the batch too.
DOCUMENTS_PER_CHUNK = DELETE_BATCH_ROWS // 3
#: Templates deleted together, each with its PDF.
TEMPLATES_PER_CHUNK = DELETE_BATCH_ROWS // 2
#: Transactions one round (one memoised task) starts at most; a chunk under way finishes.
ROUND_TRANSACTIONS = 100

#: One batch: runs in a transaction of its own, returns the rows it touched.
Batch = Callable[[DomainStore, Connection], int]


class OrganisationNotEmptied(errors.DocjobsError):
    """Rows were added to the organisation while it was being deleted; the job is retried."""


class Round:
    """The transactions one round of a step may still start, and the rows it touched."""

    def __init__(self) -> None:
        self.left = ROUND_TRANSACTIONS
        self.rows = 0

    @property
    def over(self) -> bool:
        return self.left <= 0

    def run(self, batch: Batch) -> int:
        """Run ``batch`` in a transaction of its own; rows it touched."""
        with support.transaction() as conn:
            done = batch(support.domain(), conn)
        self.left -= 1
        self.rows += done
        return done

    def until_done(self, batch: Batch) -> bool:
        """Run ``batch`` until it touches nothing (False) or the round is over (True: more to do)."""
        while not self.over:
            if self.run(batch) == 0:
                return False
        return True


#: A step: does a round's work on an organisation; True if there is more to do.
Step = Callable[[str, Round], bool]


def _detach_pending_documents(organisation_id: str, round_: Round) -> bool:
    return round_.until_done(
        lambda store, conn: store.detach_pending_documents(conn, organisation_id, limit=DELETE_BATCH_ROWS)
    )


def _delete_documents(organisation_id: str, round_: Round) -> bool:
    """Chunk by chunk: the documents' audit entries, fields, recipients, then them and their PDFs."""
    while not round_.over:
        chunk = support.read(
            lambda store, conn: store.organisation_document_chunk(
                conn, organisation_id, limit=DOCUMENTS_PER_CHUNK
            )
        )
        if not chunk:
            return False
        for kind in DOCUMENT_CHILDREN:
            while round_.run(functools.partial(_document_children, kind, chunk)):
                pass
        if not round_.run(functools.partial(_emptied_documents, chunk)):
            raise OrganisationNotEmptied(f"documents of organisation {organisation_id} keep getting new rows")
    return True


def _document_children(kind: str, chunk: list[int], store: DomainStore, conn: Connection) -> int:
    return store.delete_document_children(conn, kind, chunk, limit=DELETE_BATCH_ROWS)


def _emptied_documents(chunk: list[int], store: DomainStore, conn: Connection) -> int:
    return sum(store.delete_emptied_documents(conn, chunk))


def _delete_templates(organisation_id: str, round_: Round) -> bool:
    """Chunk by chunk: the templates' recipients, then them and their PDFs."""
    while not round_.over:
        chunk = support.read(
            lambda store, conn: store.organisation_template_chunk(
                conn, organisation_id, limit=TEMPLATES_PER_CHUNK
            )
        )
        if not chunk:
            return False
        while round_.run(functools.partial(_template_recipients, chunk)):
            pass
        if not round_.run(functools.partial(_emptied_templates, chunk)):
            raise OrganisationNotEmptied(f"templates of organisation {organisation_id} keep getting new rows")
    return True


def _template_recipients(chunk: list[int], store: DomainStore, conn: Connection) -> int:
    return store.delete_template_recipients(conn, chunk, limit=DELETE_BATCH_ROWS)


def _emptied_templates(chunk: list[int], store: DomainStore, conn: Connection) -> int:
    return sum(store.delete_emptied_templates(conn, chunk))


def _delete_team_members(organisation_id: str, round_: Round) -> bool:
    return round_.until_done(
        lambda store, conn: store.delete_organisation_team_members(
            conn, organisation_id, limit=DELETE_BATCH_ROWS
        )
    )


def _delete_teams(organisation_id: str, round_: Round) -> bool:
    return round_.until_done(
        lambda store, conn: store.delete_organisation_teams(conn, organisation_id, limit=DELETE_BATCH_ROWS)
    )


def _delete_members(organisation_id: str, round_: Round) -> bool:
    return round_.until_done(
        lambda store, conn: store.delete_organisation_members(conn, organisation_id, limit=DELETE_BATCH_ROWS)
    )


#: The steps in order, by the name their tasks carry (``delete-organisation-<name>-<round>``).
STEPS: tuple[tuple[str, Step], ...] = (
    ("detach-pending-documents", _detach_pending_documents),
    ("documents", _delete_documents),
    ("templates", _delete_templates),
    ("team-members", _delete_team_members),
    ("teams", _delete_teams),
    ("members", _delete_members),
)


def round_of(step: Step, organisation_id: str) -> dict[str, Any]:
    """One round of ``step``: ``{"rows": rows touched, "more": whether another round is needed}``."""
    round_ = Round()
    more = step(organisation_id, round_)
    return {"rows": round_.rows, "more": more}


def delete_row(organisation_id: str) -> bool:
    """Delete the organisation's row; rows added under it meanwhile are deleted first.

    Returns:
        Whether this call deleted it (False: someone else did).

    Raises:
        OrganisationNotEmptied: Rows keep being added; the job is retried.
    """
    for _ in range(2):
        with support.transaction() as conn:
            if support.domain().delete_organisation_row(conn, organisation_id):
                return True
            if support.domain().organisation(conn, organisation_id) is None:
                return False
        # Someone added a team, member or document while the steps ran: go through them again.
        for _name, step in STEPS:
            while round_of(step, organisation_id)["more"]:
                pass
    raise OrganisationNotEmptied(f"organisation {organisation_id} kept getting new rows while being deleted")
