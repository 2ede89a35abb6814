"""The organisation and team jobs against real PostgreSQL and a real SMTP server (issue 22)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import dramatiq
import psycopg
import pytest
from docjobs_devkit.smtp import Mailbox, html_part, text_part

from docjobs import jobs, runtime
from docjobs.actors import _organisation_delete as deletion
from docjobs.db.domain import DomainStore
from docjobs.domain import FlowError, Flows
from docjobs.runtime import Runtime

SUPPORT = "support@example.com"


def execute(url: str, query: str, *params: Any) -> list[dict[str, Any]]:
    with psycopg.connect(url, autocommit=True, row_factory=psycopg.rows.dict_row) as conn:
        cursor = conn.execute(query.encode(), params)
        return cursor.fetchall() if cursor.description else []


def the_job(url: str, actor: str) -> dict[str, Any]:
    (found,) = execute(url, "SELECT * FROM background_job WHERE actor = %s", actor)
    return found


def subjects_to(mailbox: Mailbox) -> list[tuple[str, str]]:
    """(address, subject) of every email received, sorted."""
    return sorted((m["To"].addresses[0].addr_spec, str(m["Subject"])) for m in mailbox.messages)


@pytest.fixture
def local_service(
    make_runtime: Callable[..., Runtime], mailbox: Mailbox, start_worker: Callable[..., dramatiq.Worker]
) -> Runtime:
    """The local provider with a worker, mail to the test SMTP server and a support address."""
    current = make_runtime(
        NEXT_PRIVATE_SMTP_HOST="127.0.0.1",
        NEXT_PRIVATE_SMTP_PORT=str(mailbox.port),
        NEXT_PUBLIC_WEBAPP_URL="https://sign.example.com",
        NEXT_PUBLIC_SUPPORT_EMAIL=SUPPORT,
    )
    start_worker(current.broker, threads=4)
    return current


def make_organisation(claim: str = "free", **quotas: Any) -> dict[str, Any]:
    """Olivia's organisation: Olivia (ADMIN, owner), Mia (MANAGER), Max (MEMBER)."""
    flows = Flows()
    people = {
        name: flows.create_user(f"{name.lower()}@example.com", name)
        for name in ("Olivia", "Mia", "Max", "Nora")
    }
    organisation = flows.create_organisation(people["Olivia"]["id"], "Acme", claim=claim, **quotas)
    store = DomainStore()
    with runtime.current().require_database().transaction() as conn:  # members added quietly
        for name, role in (("Mia", "MANAGER"), ("Max", "MEMBER")):
            store.set_organisation_member(
                conn, organisation_id=organisation["id"], user_id=people[name]["id"], role=role
            )
    return {**organisation, "people": people}


def test_a_new_member_is_announced_to_every_other_manager_on_every_provider(
    service: Runtime, mailbox: Mailbox
) -> None:
    organisation = make_organisation()
    nora = organisation["people"]["Nora"]
    Flows().join_organisation(organisation["id"], nora["id"], role="ADMIN")  # a manager, but the newcomer
    service.join()
    assert [
        ("mia@example.com", "A new member has joined your organisation"),
        ("olivia@example.com", "A new member has joined your organisation"),
    ] == subjects_to(mailbox)
    to_mia = mailbox.to("mia@")[0]
    assert 'Nora (nora@example.com) is now a member of "Acme".' in text_part(to_mia)
    assert f"https://sign.example.com/o/{organisation['url']}/settings/members" in html_part(to_mia)


def test_a_leaver_is_announced_to_the_managers_and_not_emailed(
    local_service: Runtime, mailbox: Mailbox, database_url: str
) -> None:
    organisation = make_organisation()
    mia = organisation["people"]["Mia"]
    team = Flows().create_team(organisation["id"], "Sales", member_ids=[mia["id"]])
    Flows().leave_organisation(organisation["id"], mia["id"])
    local_service.join()
    assert [("olivia@example.com", "A member has left your organisation")] == subjects_to(mailbox)
    assert 'Mia (mia@example.com) is no longer a member of "Acme".' in text_part(mailbox.messages[0])
    assert [] == execute(database_url, "SELECT * FROM team_member WHERE team_id = %s", team["id"])
    assert "COMPLETED" == the_job(database_url, "send.organisation-member-left.email")["status"]


def test_a_retried_announcement_sends_nobody_a_second_email(
    local_service: Runtime, mailbox: Mailbox, database_url: str
) -> None:
    organisation = make_organisation()
    mailbox.deferrals["mia@example.com"] = 1  # the first attempt fails for Mia, after or before Olivia's
    Flows().join_organisation(organisation["id"], organisation["people"]["Nora"]["id"])
    local_service.join()
    assert [
        ("mia@example.com", "A new member has joined your organisation"),
        ("olivia@example.com", "A new member has joined your organisation"),
    ] == subjects_to(mailbox)
    job = the_job(database_url, "send.organisation-member-joined.email")
    assert "COMPLETED" == job["status"] and 2 == job["attempts"]
    assert ["mia@example.com", "mia@example.com", "olivia@example.com"] == sorted(mailbox.asked)


def test_each_member_of_a_deleted_team_is_told_even_when_one_address_is_refused(
    local_service: Runtime, mailbox: Mailbox, database_url: str
) -> None:
    organisation = make_organisation()
    people = organisation["people"]
    team = Flows().create_team(
        organisation["id"], "Sales", url="sales", member_ids=[people["Max"]["id"], people["Mia"]["id"]]
    )
    mailbox.refused.add("max@example.com")
    Flows().delete_team(team["id"])
    local_service.join()
    assert [("mia@example.com", 'Team "Sales" has been deleted on Documenso')] == subjects_to(mailbox)
    assert {"max@example.com", "mia@example.com"} == set(mailbox.asked)
    assert [] == execute(database_url, "SELECT * FROM team WHERE id = %s", team["id"])
    job = the_job(database_url, "send.team-deleted.email")
    assert "COMPLETED" == job["status"] and 1 == job["attempts"]
    assert {"name": "Sales", "url": "sales"} == job["payload"]["team"]


def test_a_team_holding_documents_is_not_deleted_nor_a_stranger_removed(
    local_service: Runtime, mailbox: Mailbox, database_url: str
) -> None:
    organisation = make_organisation()
    olivia = organisation["people"]["Olivia"]
    team = Flows().create_team(organisation["id"], "Sales", member_ids=[olivia["id"]])
    document = Flows().create_document(olivia["id"], "Lease", b"%PDF-1.4", [])
    Flows().put_in_team(document["id"], team["id"])
    with pytest.raises(FlowError, match=f"^team {team['id']} still holds documents or templates$"):
        Flows().delete_team(team["id"])
    with pytest.raises(FlowError, match=f"^user {organisation['people']['Nora']['id']} is not a member"):
        Flows().leave_organisation(organisation["id"], organisation["people"]["Nora"]["id"])
    local_service.join()
    assert 1 == len(execute(database_url, "SELECT * FROM team WHERE id = %s", team["id"]))
    assert [] == mailbox.messages
    assert [] == execute(database_url, "SELECT * FROM background_job WHERE actor LIKE 'send.%%'")


def test_a_limit_alert_goes_to_the_admins_and_a_plain_text_notice_to_support(
    local_service: Runtime, mailbox: Mailbox, database_url: str
) -> None:
    organisation = make_organisation("pro", member_seats=5, document_quota=100, email_quota=None, api_quota=7)
    payload = {"organisationId": organisation["id"], "counter": "document", "period": "2026-12"}
    jobs.trigger("send.organisation-limit-alert.email", {**payload, "kind": "quotaNearing"})
    local_service.join()
    assert [
        (
            "olivia@example.com",
            "Approaching Your Plan Limits",
        ),  # the only ADMIN: Mia manages, Max is a member
        (SUPPORT, f"[Limits] Acme ({organisation['id']}): document quotaNearing 2026-12"),
    ] == subjects_to(mailbox)
    (notice,) = mailbox.to(SUPPORT)
    assert "text/plain" == notice.get_content_type() and not notice.is_multipart()
    body = notice.get_content()
    assert "document quota: 100; email quota: unlimited; api quota: 7" in body
    assert "Members: 3 of 5 paid seats" in body and "Claim: pro" in body
    mailbox.messages.clear()
    jobs.trigger("send.organisation-limit-alert.email", {**payload, "kind": "quota"})
    local_service.join()
    assert "Organisation Review Required" == mailbox.to("olivia@")[0]["Subject"]


def test_a_limit_alert_on_the_free_claim_sends_nothing(
    local_service: Runtime, mailbox: Mailbox, database_url: str
) -> None:
    organisation = make_organisation("free")
    jobs.trigger(
        "send.organisation-limit-alert.email",
        {"organisationId": organisation["id"], "counter": "email", "kind": "rateLimit", "period": "2026-12"},
    )
    local_service.join()
    assert [] == mailbox.messages
    assert "COMPLETED" == the_job(database_url, "send.organisation-limit-alert.email")["status"]


def test_without_a_support_address_the_admins_are_told_and_the_skip_logged(
    make_runtime: Callable[..., Runtime],
    mailbox: Mailbox,
    start_worker: Callable[..., dramatiq.Worker],
    caplog: pytest.LogCaptureFixture,
) -> None:
    current = make_runtime(NEXT_PRIVATE_SMTP_HOST="127.0.0.1", NEXT_PRIVATE_SMTP_PORT=str(mailbox.port))
    start_worker(current.broker)
    organisation = make_organisation("pro")
    caplog.set_level(logging.INFO, logger="docjobs.jobs")
    jobs.trigger(
        "send.organisation-limit-alert.email",
        {"organisationId": organisation["id"], "counter": "api", "kind": "rateLimit", "period": "2026-12"},
    )
    current.join()
    assert [("olivia@example.com", "Organisation Review Required")] == subjects_to(mailbox)
    skipped = [r.getMessage() for r in caplog.records if getattr(r, "action", None) == "email_skipped"]
    assert ["Nothing to send: NEXT_PUBLIC_SUPPORT_EMAIL is not set, so support is not told."] == skipped


# -- internal.admin-delete-organisation ----------------------------------------------------------

#: Counts every row deleted, cascades included, by the transaction that deleted it.
DELETED_ROWS_WATCH = """
CREATE TABLE deleted_row (txid bigint NOT NULL, tbl text NOT NULL);
CREATE FUNCTION note_deleted_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO deleted_row VALUES (txid_current(), TG_TABLE_NAME);
    RETURN OLD;
END $$;
"""
WATCHED_TABLES = (
    "organisation", "organisation_member", "team", "team_member", "template", "template_recipient",
    "document", "document_data", "recipient", "field", "audit_log",
)  # fmt: skip

#: 150 finished documents in a team, each with its PDF, 2 recipients, 2 fields and 3 audit entries.
TEAM_DOCUMENTS = """
WITH data AS (
    INSERT INTO document_data (name, data)
    SELECT 'doc' || n || '.pdf', '\\x255044462d'::bytea FROM generate_series(1, 150) AS n RETURNING id
), docs AS (
    INSERT INTO document (envelope_id, owner_id, title, status, original_data_id, current_data_id, team_id)
    SELECT 'envelope_' || md5(random()::text || id), %s, 'Doc ' || id, 'COMPLETED', id, id, %s FROM data
    RETURNING id
), people AS (
    INSERT INTO recipient (document_id, email, name, token, signing_status)
    SELECT d.id, 'r' || k || '@example.com', 'R' || k, md5(random()::text || d.id || '-' || k), 'SIGNED'
    FROM docs d, generate_series(1, 2) AS k
    RETURNING id, document_id
), fields AS (
    INSERT INTO field (document_id, recipient_id, type, page, position_x, position_y, width, height)
    SELECT document_id, id, 'SIGNATURE', 1, 10, 10, 20, 5 FROM people
)
INSERT INTO audit_log (document_id, type) SELECT d.id, 'DOCUMENT_CREATED' FROM docs d, generate_series(1, 3)
"""
#: Rows TEAM_DOCUMENTS writes that the delete removes: documents, PDFs, recipients, fields, audit entries.
ROWS_PER_TEAM = 150 * (1 + 1 + 2 + 2 + 3)


@pytest.fixture
def big_organisation(local_service: Runtime, database_url: str) -> Iterator[dict[str, Any]]:
    """Acme with 2 teams of 150 finished documents and a template each, 1 document out for signing, and
    a neighbour organisation that must survive its delete."""
    flows = Flows()
    organisation = make_organisation("pro")
    people = organisation["people"]
    neighbour = flows.create_organisation(people["Nora"]["id"], "Neighbour")
    teams = [
        flows.create_team(organisation["id"], name, member_ids=[people["Mia"]["id"], people["Max"]["id"]])
        for name in ("Sales", "Legal")
    ]
    other_team = flows.create_team(neighbour["id"], "Ops", member_ids=[people["Nora"]["id"]])
    for team in [*teams, other_team]:
        execute(database_url, TEAM_DOCUMENTS, people["Olivia"]["id"], team["id"])
        (data,) = execute(
            database_url, "INSERT INTO document_data (name, data) VALUES ('t.pdf', 'x') RETURNING id"
        )
        (template,) = execute(
            database_url,
            "INSERT INTO template (team_id, owner_id, title, data_id) VALUES (%s, %s, 'Tpl', %s) RETURNING id",
            team["id"], people["Olivia"]["id"], data["id"],
        )  # fmt: skip
        execute(database_url, "INSERT INTO template_recipient (template_id, position) VALUES (%s, 1), (%s, 2)",
                template["id"], template["id"])  # fmt: skip
    (pending,) = execute(
        database_url,
        "UPDATE document SET status = 'PENDING' WHERE id = (SELECT min(id) FROM document WHERE team_id = %s) "
        "RETURNING id",
        teams[0]["id"],
    )
    execute(database_url, DELETED_ROWS_WATCH)
    for table in WATCHED_TABLES:
        execute(database_url, f'CREATE TRIGGER watch_{table} AFTER DELETE ON "{table}" '
                "FOR EACH ROW EXECUTE FUNCTION note_deleted_row()")  # fmt: skip
    yield {**organisation, "teams": teams, "neighbour": neighbour, "pending_id": pending["id"]}


OWNED_COUNTS = """SELECT
    (SELECT count(*) FROM organisation WHERE id = %(o)s) AS organisation,
    (SELECT count(*) FROM organisation_member WHERE organisation_id = %(o)s) AS members,
    (SELECT count(*) FROM team WHERE organisation_id = %(o)s) AS teams,
    (SELECT count(*) FROM template tp JOIN team t ON t.id = tp.team_id WHERE t.organisation_id = %(o)s) AS templates,
    (SELECT count(*) FROM document d JOIN team t ON t.id = d.team_id WHERE t.organisation_id = %(o)s) AS documents"""
NOTHING_LEFT = {"organisation": 0, "members": 0, "teams": 0, "templates": 0, "documents": 0}


def owned_counts(url: str, organisation_id: str) -> dict[str, int]:
    """What an organisation still holds."""
    with psycopg.connect(url, row_factory=psycopg.rows.dict_row) as conn:
        row = conn.execute(OWNED_COUNTS.encode(), {"o": organisation_id}).fetchone()
    assert row is not None
    return {key: int(value) for key, value in row.items()}


def rows_per_transaction(url: str) -> dict[int, int]:
    return {
        row["txid"]: row["rows"]
        for row in execute(url, "SELECT txid, count(*) AS rows FROM deleted_row GROUP BY txid")
    }


def test_an_organisation_is_deleted_in_bounded_batches_and_its_owner_told(
    local_service: Runtime,
    big_organisation: dict[str, Any],
    mailbox: Mailbox,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    organisation = big_organisation
    monkeypatch.setattr(deletion, "ROUND_TRANSACTIONS", 4)  # many short rounds, each a task
    neighbour_before = owned_counts(database_url, organisation["neighbour"]["id"])
    pdfs_before = execute(database_url, "SELECT count(*) AS n FROM document_data")[0]["n"]
    Flows().admin_delete_organisation(
        organisation["id"], requested_by_user_id=organisation["people"]["Nora"]["id"]
    )
    local_service.join(timeout_seconds=60)

    job = the_job(database_url, "internal.admin-delete-organisation")
    assert "COMPLETED" == job["status"] and 1 == job["attempts"], job["last_error"]
    assert NOTHING_LEFT == owned_counts(database_url, organisation["id"])
    assert neighbour_before == owned_counts(database_url, organisation["neighbour"]["id"])
    # Every row of the organisation went, PDFs included, and no transaction deleted more than a batch.
    per_transaction = rows_per_transaction(database_url)
    # Of 2 teams: the documents but the pending one (9 rows), 2 templates (with PDF and 2 recipients),
    # 4 team members, 2 teams; then 3 organisation members and the organisation.
    expected = 2 * ROWS_PER_TEAM - 9 + 2 * (1 + 1 + 2) + 4 + 2 + 3 + 1
    assert expected == sum(per_transaction.values())
    assert max(per_transaction.values()) <= deletion.DELETE_BATCH_ROWS
    assert len(per_transaction) >= expected / deletion.DELETE_BATCH_ROWS + 1
    assert (
        pdfs_before - (300 - 1 + 2)
        == execute(database_url, "SELECT count(*) AS n FROM document_data")[0]["n"]
    )
    # The document out for signing stays with its owner, recipients and fields, outside any team.
    (pending,) = execute(database_url, "SELECT * FROM document WHERE id = %s", organisation["pending_id"])
    assert pending["team_id"] is None and "PENDING" == pending["status"]
    assert 2 == len(execute(database_url, "SELECT * FROM recipient WHERE document_id = %s", pending["id"]))
    assert 2 == len(execute(database_url, "SELECT * FROM field WHERE document_id = %s", pending["id"]))
    assert [("olivia@example.com", "Your organisation has been deleted")] == subjects_to(mailbox)
    assert '"Acme"' in text_part(mailbox.messages[0])
    tasks = {
        row["name"]: row["status"]
        for row in execute(database_url, "SELECT name, status FROM background_job_task")
    }
    assert {"COMPLETED"} == set(tasks.values())
    document_rounds = sorted(name for name in tasks if name.startswith("delete-organisation-documents-"))
    # A round starts no chunk (166 documents) after its 4th transaction: one chunk a round, then an empty one.
    assert [
        "delete-organisation-documents-1",
        "delete-organisation-documents-2",
        "delete-organisation-documents-3",
    ] == document_rounds
    assert {"get-organisation", "delete-organisation-members-1", "delete-organisation"} <= set(tasks)


WATCHED_METHODS = (
    "detach_pending_documents", "organisation_document_chunk", "delete_document_children",
    "delete_emptied_documents", "delete_organisation_teams",
)  # fmt: skip


def test_a_delete_that_crashed_mid_way_finishes_on_the_next_run_without_redoing_finished_steps(
    local_service: Runtime,
    big_organisation: dict[str, Any],
    mailbox: Mailbox,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    organisation = big_organisation
    calls: list[str] = []  # the store's delete methods in the order called, and "crash" where the worker died
    real = {name: getattr(DomainStore, name) for name in WATCHED_METHODS}

    def watched(name: str) -> Callable[..., Any]:
        def call(self: DomainStore, *args: Any, **kwargs: Any) -> Any:
            calls.append(name)
            if name == "delete_document_children" and calls.count(name) == 5 and "crash" not in calls:
                calls.append("crash")  # some batches of the first chunk are committed, the rest never run
                raise RuntimeError("the worker died")
            return real[name](self, *args, **kwargs)

        return call

    for name in WATCHED_METHODS:
        monkeypatch.setattr(DomainStore, name, watched(name))
    Flows().admin_delete_organisation(organisation["id"], requested_by_user_id=1, send_email_to_owner=True)
    local_service.join(timeout_seconds=60)

    job = the_job(database_url, "internal.admin-delete-organisation")
    assert "COMPLETED" == job["status"] and 2 == job["attempts"]
    assert "the worker died" in job["last_error"]
    assert NOTHING_LEFT == owned_counts(database_url, organisation["id"])
    first_run, second_run = calls[: calls.index("crash")], calls[calls.index("crash") + 1 :]
    assert {"detach_pending_documents", "organisation_document_chunk"} <= set(first_run)
    assert "delete_emptied_documents" not in first_run  # the crash came before the first chunk's documents
    # The finished step (detaching the pending document) is skipped; the documents' step starts again.
    assert "organisation_document_chunk" == second_run[0] and "detach_pending_documents" not in second_run
    assert {"delete_emptied_documents", "delete_organisation_teams"} <= set(second_run)
    assert max(rows_per_transaction(database_url).values()) <= deletion.DELETE_BATCH_ROWS
    assert [("olivia@example.com", "Your organisation has been deleted")] == subjects_to(mailbox)


def test_deleting_a_missing_organisation_is_a_no_op(
    local_service: Runtime, mailbox: Mailbox, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="docjobs.jobs")
    jobs.trigger(
        "internal.admin-delete-organisation",
        {"organisationId": "org_missing", "sendEmailToOwner": True, "requestedByUserId": 1},
    )
    local_service.join()
    job = the_job(database_url, "internal.admin-delete-organisation")
    assert "COMPLETED" == job["status"] and 1 == job["attempts"]
    assert [] == mailbox.messages
    assert ["organisation_missing"] == [
        r.action
        for r in caplog.records
        if getattr(r, "action", "").startswith("organisation_")  # type: ignore[attr-defined]
    ]


def test_an_organisation_is_deleted_on_every_provider(
    service: Runtime, mailbox: Mailbox, database_url: str
) -> None:
    organisation = make_organisation("pro")
    team = Flows().create_team(organisation["id"], "Sales")
    execute(database_url, TEAM_DOCUMENTS, organisation["people"]["Olivia"]["id"], team["id"])
    Flows().admin_delete_organisation(organisation["id"], requested_by_user_id=1)
    service.join(timeout_seconds=60)
    assert NOTHING_LEFT == owned_counts(database_url, organisation["id"])
    assert [("olivia@example.com", "Your organisation has been deleted")] == subjects_to(mailbox)
    assert "COMPLETED" == the_job(database_url, "internal.admin-delete-organisation")["status"]


def test_a_team_or_organisation_url_with_other_characters_is_refused_and_nothing_written(
    pg_runtime: Runtime, database_url: str
) -> None:
    owner = Flows().create_user("olivia@example.com", "Olivia")
    with pytest.raises(FlowError, match=r"^url 'Acme Inc' may hold only lower-case letters, digits and '-'$"):
        Flows().create_organisation(owner["id"], "Acme", url="Acme Inc")
    assert [] == execute(database_url, "SELECT id FROM organisation")
    organisation = Flows().create_organisation(owner["id"], "Acme", url="acme")
    with pytest.raises(FlowError, match=r"^url 'sales/<i>x</i>' may hold only lower-case letters"):
        Flows().create_team(organisation["id"], "Sales", url="sales/<i>x</i>", member_ids=[owner["id"]])
    assert [] == execute(database_url, "SELECT id FROM team")
    assert [] == execute(database_url, "SELECT * FROM team_member")
