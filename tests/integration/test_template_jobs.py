"""The template jobs (issue 22) against real PostgreSQL, Redis and SMTP servers.

A direct link's signer makes a document and the template's owner is told; a bulk send
makes one document per good CSV row, sends it, and lists the bad rows in one summary
to the user, also when its worker is killed mid-way and another one finishes the job;
a CSV no row of which could be used is refused at send.
"""

from __future__ import annotations

import collections
import os
import re
import secrets
import signal
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dramatiq
import psycopg
import pytest
from docjobs_devkit.http import serve
from docjobs_devkit.pdfs import sample_pdf
from docjobs_devkit.smtp import Mailbox, html_part, text_part

from docjobs import errors, jobs
from docjobs.domain import FlowError, Flows, RecipientSpec
from docjobs.domain.bulk_send import MAX_CSV_BYTES, MAX_NAME_CHARS, MAX_ROWS
from docjobs.runtime import Runtime
from docjobs.web.app import create_app
from tests.conftest import app_port, job_row, provider_overrides, wait_for
from tests.support.processes import Processes, cli_env

PDF = sample_pdf(1, title="NDA")
BASE_URL = "https://sign.example.com"
BULK = "internal.bulk-send-template"
DIRECT = "send.document.created.from.direct.template.email"
INVITE_SUBJECT = "Please sign this document"
#: The rows of the 1,000-row CSV that make no document, and why (the summary's words).
BAD_ROWS = {
    7: "recipient_1_email 'not-an-address' is not a valid email address",
    250: "recipient_1_email is missing",
    613: f"recipient_1_name is longer than {MAX_NAME_CHARS} characters",
    999: "it has 1 more value(s) than the header has columns",
}
#: How long the 1,000-row bulk send, its invitations and its summary may take in these tests.
BULK_DEADLINE_SECONDS = 240.0


def smtp_settings(port: int) -> dict[str, str]:
    return {
        "NEXT_PRIVATE_SMTP_HOST": "127.0.0.1",
        "NEXT_PRIVATE_SMTP_PORT": str(port),
        "NEXT_PUBLIC_WEBAPP_URL": BASE_URL,
        "NEXT_PRIVATE_SMTP_FROM_NAME": "Example Sign",
        "NEXT_PRIVATE_SMTP_FROM_ADDRESS": "sign@example.com",
    }


@pytest.fixture(params=["local"])
def signing_service(
    request: pytest.FixtureRequest,
    make_runtime: Callable[..., Runtime],
    mailbox: Mailbox,
    start_worker: Callable[..., dramatiq.Worker],
) -> Iterator[Runtime]:
    """The signing service on the provider the param names (local unless a test asks), running jobs."""
    current = make_runtime(**provider_overrides(request, request.param), **smtp_settings(mailbox.port))
    if request.param != "inngest":
        start_worker(current.broker, threads=4)
        yield current
        return
    emulator = request.getfixturevalue("inngest_emulator")
    with serve(create_app(current), port=app_port(current)) as base:
        assert 200 == emulator.sync(f"{base}/api/jobs").status_code
        yield current


def rows(url: str, query: str, *params: Any) -> list[dict[str, Any]]:
    with psycopg.connect(url, row_factory=psycopg.rows.dict_row) as conn:
        return conn.execute(query.encode(), params).fetchall()


def make_team(url: str, owner_id: int, *, members: tuple[int, ...] = ()) -> dict[str, Any]:
    """An organisation owned by ``owner_id`` with one team (plain SQL: the organisation flows are not ours)."""
    suffix = secrets.token_hex(4)
    with psycopg.connect(url, autocommit=True, row_factory=psycopg.rows.dict_row) as conn:
        conn.execute(
            "INSERT INTO organisation (id, name, url, owner_user_id) VALUES (%s, 'Acme', %s, %s)",
            (f"org_{suffix}", f"acme-{suffix}", owner_id),
        )
        team = conn.execute(
            "INSERT INTO team (organisation_id, name, url) VALUES (%s, 'Sales', %s) RETURNING *",
            (f"org_{suffix}", f"sales-{suffix}"),
        ).fetchone()
        assert team is not None
        for member in (owner_id, *members):
            conn.execute("INSERT INTO team_member (team_id, user_id) VALUES (%s, %s)", (team["id"], member))
    return team


def bulk_csv(count: int, *, bad: bool = True) -> str:
    """A CSV of ``count`` rows for recipient 1 (signer ``s<n>@example.com``), with :data:`BAD_ROWS` when ``bad``."""
    lines = ["recipient_1_email,recipient_1_name"]
    for number in range(1, count + 1):
        email, name, extra = f"s{number}@example.com", f"Signer {number}", ""
        if bad and number == 7:
            email = "not-an-address"
        elif bad and number == 250:
            email = ""
        elif bad and number == 613:
            name = "N" * (MAX_NAME_CHARS + 1)
        elif bad and number == 999:
            extra = ",surplus"
        lines.append(f"{email},{name}{extra}")
    return "\n".join(lines) + "\n"


def good_rows(count: int, *, bad: bool = True) -> set[int]:
    return set(range(1, count + 1)) - (set(BAD_ROWS) if bad else set())


@pytest.fixture
def bulk_template(signing_service: Runtime, database_url: str) -> dict[str, Any]:
    """Olivia's template "NDA" in her team: recipient 1 signs (from the CSV), recipient 2 is a fixed CC."""
    flows = Flows()
    owner = flows.create_user("olivia@example.com", "Olivia Owner")
    team = make_team(database_url, owner["id"])
    template = flows.create_template(
        owner["id"], team["id"], "NDA", PDF,
        [RecipientSpec("", "", "SIGNER"), RecipientSpec("legal@example.com", "Legal", "CC")],
        subject=None, message="Please sign our NDA.",
    )  # fmt: skip
    return {**template, "owner": owner, "team": team}


def summary_rows(summary: Any) -> dict[int, str]:
    """The failed rows a summary email lists, from its text part: ``{row: why}``."""
    listed = {}
    for line in text_part(summary).splitlines():
        if line.startswith("Row "):
            number, _, why = line.removeprefix("Row ").partition(": ")
            listed[int(number)] = why
    return listed


def assert_one_document_and_invitation_per_good_row(
    url: str, mailbox: Mailbox, template: dict[str, Any], good: set[int]
) -> None:
    documents = rows(
        url,
        "SELECT d.*, (SELECT array_agg(r.email ORDER BY r.id) FROM recipient r WHERE r.document_id = d.id)"
        " AS emails FROM document d ORDER BY d.id",
    )
    assert len(good) == len(documents)
    assert {f"s{n}@example.com" for n in good} == {d["emails"][0] for d in documents}
    assert all(d["emails"][1] == "legal@example.com" for d in documents)
    assert {("PENDING", "TEMPLATE", template["id"], template["team_id"], template["data_id"])} == {
        (d["status"], d["source"], d["template_id"], d["team_id"], d["original_data_id"]) for d in documents
    }
    invitations = collections.Counter(
        str(m["To"]) for m in list(mailbox.messages) if m["Subject"] == INVITE_SUBJECT
    )
    assert {f"Signer {n} <s{n}@example.com>": 1 for n in good} == dict(invitations)


def test_a_direct_link_signer_makes_a_signed_document_and_the_template_owner_is_told(
    signing_service: Runtime, database_url: str, mailbox: Mailbox
) -> None:
    flows = Flows()
    owner = flows.create_user("olivia@example.com", "Olivia Owner")
    team = make_team(database_url, owner["id"])
    template = flows.create_template(
        owner["id"], team["id"], "Consent form", PDF,
        [RecipientSpec("direct@example.com", "Direct"), RecipientSpec("bob@example.com", "Bob")],
        signing_order="SEQUENTIAL", direct_link=True,
    )  # fmt: skip
    signer = flows.use_direct_link(template["direct_link_token"], email="sam@example.com", name="Sam Signer")
    signing_service.join()

    assert ("sam@example.com", "SIGNED") == (signer["email"], signer["signing_status"])
    document = flows.document(signer["document_id"])
    assert ("PENDING", "TEMPLATE_DIRECT_LINK", template["id"], owner["id"]) == (
        document["status"], document["source"], document["template_id"], document["owner_id"],
    )  # fmt: skip
    (told,) = mailbox.to("olivia@")
    assert "Document created from direct template" == told["Subject"]
    said = 'Sam Signer (sam@example.com) used the direct link of your template "Consent form"'
    assert said in text_part(told) and said.replace('"', "&#34;") in html_part(told)
    assert f"{BASE_URL}/t/{team['url']}/documents/{document['envelope_id']}" in text_part(told)
    (invited,) = mailbox.to("bob@")  # next in signing order
    assert INVITE_SUBJECT == invited["Subject"]
    assert [] == mailbox.to("sam@")  # signed already: no invitation
    (job,) = rows(database_url, "SELECT * FROM background_job WHERE actor = %s", DIRECT)
    assert ("COMPLETED", {"envelopeId": document["envelope_id"], "recipientId": signer["id"]}) == (
        job["status"], job["payload"],
    )  # fmt: skip


def test_a_direct_link_with_nobody_else_to_sign_seals_the_document(
    signing_service: Runtime, database_url: str, mailbox: Mailbox
) -> None:
    flows = Flows()
    owner = flows.create_user("olivia@example.com", "Olivia Owner")
    team = make_team(database_url, owner["id"])
    template = flows.create_template(
        owner["id"],
        team["id"],
        "Waiver",
        PDF,
        [RecipientSpec("direct@example.com", "Direct")],
        direct_link=True,
    )
    signer = flows.use_direct_link(template["direct_link_token"], email="sam@example.com", name="Sam Signer")
    signing_service.join()
    document = flows.document(signer["document_id"])
    assert "COMPLETED" == document["status"]
    assert document["current_data_id"] != template["data_id"]  # sealed into a PDF of its own
    subjects = sorted(str(m["Subject"]) for m in mailbox.messages)
    assert ["Document created from direct template", "Signing Complete!", "Signing Complete!"] == subjects


def test_a_disabled_or_unknown_direct_link_makes_nothing(signing_service: Runtime, database_url: str) -> None:
    flows = Flows()
    owner = flows.create_user("olivia@example.com", "Olivia Owner")
    team = make_team(database_url, owner["id"])
    template = flows.create_template(
        owner["id"], team["id"], "Waiver", PDF, [RecipientSpec("direct@example.com")], direct_link=True
    )
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("UPDATE template SET direct_link_enabled = false")
    for token in (template["direct_link_token"], "no-such-link"):
        with pytest.raises(FlowError, match="no template has this direct link, or it is disabled"):
            flows.use_direct_link(token, email="sam@example.com", name="Sam")
    assert [] == rows(database_url, "SELECT id FROM document")
    assert [] == rows(database_url, "SELECT id FROM background_job")


@pytest.mark.parametrize("signing_service", ["local", "bullmq", "inngest"], indirect=True)
def test_a_bulk_send_lists_its_bad_rows_and_sends_the_others(
    signing_service: Runtime, database_url: str, mailbox: Mailbox, bulk_template: dict[str, Any]
) -> None:
    owner = bulk_template["owner"]
    csv_content = bulk_csv(20, bad=False).replace("s7@example.com,Signer 7", "not-an-address,Signer 7")
    jobs.trigger(
        BULK,
        {"userId": owner["id"], "teamId": bulk_template["team_id"], "templateId": bulk_template["id"],
         "csvContent": csv_content, "sendImmediately": True},
    )  # fmt: skip
    good = set(range(1, 21)) - {7}
    (summary,) = [m for m in mailbox.wait_for(len(good) + 1) if m["Subject"].startswith("Bulk Send")]
    signing_service.join()
    assert "Bulk Send Complete: NDA" == summary["Subject"]
    assert "Olivia Owner <olivia@example.com>" == str(summary["To"])
    assert "19 documents created and sent; 1 row failed." in text_part(summary)
    assert {7: BAD_ROWS[7]} == summary_rows(summary)
    assert_one_document_and_invitation_per_good_row(database_url, mailbox, bulk_template, good)


def test_a_bulk_send_of_1000_rows_sends_every_good_row_and_lists_exactly_the_bad_ones(
    signing_service: Runtime, database_url: str, mailbox: Mailbox, bulk_template: dict[str, Any]
) -> None:
    owner = bulk_template["owner"]
    message = jobs.trigger(
        BULK,
        {"userId": owner["id"], "teamId": bulk_template["team_id"], "templateId": bulk_template["id"],
         "csvContent": bulk_csv(MAX_ROWS), "sendImmediately": True,
         "requestMetadata": {"ipAddress": "203.0.113.9", "userAgent": "Bulk tester"}},
    )  # fmt: skip
    good = good_rows(MAX_ROWS)
    mailbox.wait_for(len(good) + 1, timeout=BULK_DEADLINE_SECONDS)
    signing_service.join(timeout_seconds=BULK_DEADLINE_SECONDS)

    (summary,) = [m for m in mailbox.messages if m["Subject"].startswith("Bulk Send")]
    assert "Bulk Send Complete: NDA" == summary["Subject"]
    assert "996 documents created and sent; 4 rows failed." in text_part(summary)
    assert BAD_ROWS == summary_rows(summary)
    assert_one_document_and_invitation_per_good_row(database_url, mailbox, bulk_template, good)
    job = job_row(database_url, message.message_id)
    assert ("COMPLETED", 0) == (job["status"], job["retried"])
    created = rows(database_url, "SELECT * FROM audit_log WHERE type = 'DOCUMENT_CREATED' ORDER BY id")
    assert {("203.0.113.9", "Bulk tester", owner["id"])} == {
        (str(a["ip_address"]), a["user_agent"], a["user_id"]) for a in created
    }
    # Inngest allows 1,000 steps a run: the rows go 25 to a memoised step, then the summary.
    (tasks,) = rows(
        database_url, "SELECT count(*) AS n FROM background_job_task WHERE job_id = %s", message.message_id
    )
    assert MAX_ROWS // 25 + 1 == tasks["n"]
    seconds = (job["completed_at"] - job["started_at"]).total_seconds()
    print(f"bulk send of {MAX_ROWS} rows: {seconds:.1f} s in the job")  # the figure the report quotes


def test_a_bulk_send_without_sending_leaves_drafts_and_still_sums_up(
    signing_service: Runtime, database_url: str, mailbox: Mailbox, bulk_template: dict[str, Any]
) -> None:
    owner = bulk_template["owner"]
    jobs.trigger(
        BULK,
        {"userId": owner["id"], "teamId": bulk_template["team_id"], "templateId": bulk_template["id"],
         "csvContent": bulk_csv(3, bad=False), "sendImmediately": False},
    )  # fmt: skip
    (summary,) = mailbox.wait_for(1)
    signing_service.join()
    assert "3 documents created; 0 rows failed." in text_part(summary)
    assert ["DRAFT"] * 3 == [d["status"] for d in rows(database_url, "SELECT status FROM document")]
    assert [summary] == list(mailbox.messages)  # no invitations


def test_a_user_outside_the_templates_team_makes_no_documents(
    signing_service: Runtime, database_url: str, mailbox: Mailbox, bulk_template: dict[str, Any]
) -> None:
    outsider = Flows().create_user("mallory@example.com", "Mallory")
    message = jobs.trigger(
        BULK,
        {"userId": outsider["id"], "teamId": bulk_template["team_id"], "templateId": bulk_template["id"],
         "csvContent": bulk_csv(3, bad=False), "sendImmediately": True},
    )  # fmt: skip
    signing_service.join()
    job = job_row(database_url, message.message_id)
    assert "FAILED" == job["status"]
    assert f"user {outsider['id']} may not use template {bulk_template['id']}" in job["last_error"]
    assert [] == rows(database_url, "SELECT id FROM document")
    assert [] == list(mailbox.messages)


def _rows_csv(count: int) -> str:
    return "recipient_1_email\n" + "".join(f"s{n}@example.com\n" for n in range(count))


@pytest.mark.parametrize(
    ("csv_content", "problem"),
    [
        (_rows_csv(MAX_ROWS + 1), f"the CSV has more than {MAX_ROWS:,} rows"),
        ("recipient_1_email\n" + "a" * MAX_CSV_BYTES, f"the CSV is {MAX_CSV_BYTES + 18:,} bytes; at most"),
        ("email,name\nann@example.com,Ann\n", "the CSV's header names no recipient_<n>_email column"),
        ("recipient_1_email,recipient_1_email\na@example.com,b@example.com\n", "the CSV names column 'recipient_1_email' twice"),
        ("recipient_1_email\n", "the CSV has a header but no rows"),
        ("\n\n", "the CSV is empty"),
        ('recipient_1_email\n"ann@example.com\n', "the CSV cannot be read at line 2: unexpected end of data"),
    ],
    ids=["too-many-rows", "too-large", "no-recipient-column", "column-twice", "no-rows", "empty", "unclosed-quote"],
)  # fmt: skip
def test_a_csv_no_row_of_which_could_be_used_is_refused_at_send(
    pg_runtime: Runtime, database_url: str, csv_content: str, problem: str
) -> None:
    payload = {"userId": 1, "teamId": 1, "templateId": 1, "csvContent": csv_content, "sendImmediately": True}
    with pytest.raises(errors.PayloadError) as refused:
        jobs.trigger(BULK, payload)
    assert "csvContent" == refused.value.field
    assert str(refused.value).startswith(f"{BULK}: csvContent: {problem}")
    assert 1 == len(str(refused.value).splitlines())
    assert [] == rows(database_url, "SELECT id FROM background_job")


@pytest.fixture
def silent_smtp() -> Iterator[int]:
    """A port that takes connections and never answers: an email sent there waits, delivering nothing."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1024)
        yield listener.getsockname()[1]


@pytest.fixture
def processes() -> Iterator[Processes]:
    running = Processes()
    yield running
    running.stop_all()


def test_a_bulk_send_whose_worker_is_killed_mid_way_ends_with_one_document_and_email_each(
    make_runtime: Callable[..., Runtime],
    environ: dict[str, str],
    database_url: str,
    mailbox: Mailbox,
    silent_smtp: int,
    processes: Processes,
    tmp_path: Path,
) -> None:
    # The first worker's mail server never answers, so it delivers nothing before it is
    # killed: every email is the second worker's, and a duplicate would show.
    lease = {"NEXT_PRIVATE_JOBS_LEASE_SECONDS": "1.5"}
    current = make_runtime(**lease, **smtp_settings(mailbox.port))
    flows = Flows()
    owner = flows.create_user("olivia@example.com", "Olivia Owner")
    team = make_team(database_url, owner["id"])
    template = flows.create_template(
        owner["id"], team["id"], "NDA", PDF,
        [RecipientSpec("", "", "SIGNER"), RecipientSpec("legal@example.com", "Legal", "CC")],
    )  # fmt: skip
    first = processes.start(
        "worker", "--threads", "4",
        env=cli_env(environ, **lease, **smtp_settings(silent_smtp)), log=tmp_path / "first.log",
    )  # fmt: skip
    message = jobs.trigger(
        BULK,
        {"userId": owner["id"], "teamId": team["id"], "templateId": template["id"],
         "csvContent": bulk_csv(MAX_ROWS), "sendImmediately": True},
    )  # fmt: skip
    wait_for(lambda: len(rows(database_url, "SELECT id FROM document")) >= 300, timeout=120)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(10)
    made_by_first = len(rows(database_url, "SELECT id FROM document"))
    assert made_by_first < MAX_ROWS - len(BAD_ROWS)  # killed mid-way
    assert [] == list(mailbox.messages)

    processes.start(
        "worker", "--threads", "4",
        env=cli_env(environ, **lease, **smtp_settings(mailbox.port)), log=tmp_path / "second.log",
    )  # fmt: skip
    good = good_rows(MAX_ROWS)
    mailbox.wait_for(len(good) + 1, timeout=BULK_DEADLINE_SECONDS)
    wait_for(lambda: job_row(database_url, message.message_id)["status"] == "COMPLETED", timeout=60)
    current.join(timeout_seconds=60)  # nothing left to run: a duplicate would have been sent by now

    summaries = [m for m in mailbox.messages if m["Subject"].startswith("Bulk Send")]
    assert 1 == len(summaries)
    assert BAD_ROWS == summary_rows(summaries[0])
    assert_one_document_and_invitation_per_good_row(database_url, mailbox, template | {"owner": owner}, good)
    assert len(good) + 1 == len(mailbox.messages)
    job = job_row(database_url, message.message_id)
    assert 1 == job["retried"]
    assert "stopped heartbeating" in job["last_error"]


def test_a_spreadsheets_csv_is_sent_and_its_bad_rows_named_by_their_place_in_the_file(
    signing_service: Runtime, database_url: str, mailbox: Mailbox, bulk_template: dict[str, Any]
) -> None:
    # Excel's "CSV UTF-8" in a European locale: a BOM, ";" between values, the header as typed.
    csv_content = (
        "\ufeffRecipient_1_Email;Recipient_1_Name\r\n"
        "s1@example.com;Signer 1\r\n"  # row 1
        ";\r\n"  # row 2: all empty, skipped
        "bad-email;B\r\n"  # row 3
        "\r\n"  # row 4: blank, skipped
        "bad2;C\r\n"  # row 5
        "s6@example.com;Signer 6\r\n"  # row 6
    )
    owner = bulk_template["owner"]
    jobs.trigger(
        BULK,
        {"userId": owner["id"], "teamId": bulk_template["team_id"], "templateId": bulk_template["id"],
         "csvContent": csv_content, "sendImmediately": True},
    )  # fmt: skip
    (summary,) = [m for m in mailbox.wait_for(3) if m["Subject"].startswith("Bulk Send")]
    signing_service.join()
    assert "2 documents created and sent; 2 rows failed." in text_part(summary)
    assert {
        3: "recipient_1_email 'bad-email' is not a valid email address",
        5: "recipient_1_email 'bad2' is not a valid email address",
    } == summary_rows(summary)
    assert_one_document_and_invitation_per_good_row(database_url, mailbox, bulk_template, {1, 6})
    # Each document's request_key names the row's place among the rows kept, as before.
    keys = [d["request_key"] for d in rows(database_url, "SELECT request_key FROM document ORDER BY id")]
    assert [":1", ":4"] == [key[key.rindex(":") :] for key in keys]


def test_a_team_url_made_from_its_name_is_a_slug_in_the_direct_template_email(
    signing_service: Runtime, mailbox: Mailbox
) -> None:
    flows = Flows()
    owner = flows.create_user("olivia@example.com", "Olivia Owner")
    organisation = flows.create_organisation(owner["id"], "Acme <b>Inc</b>")
    team = flows.create_team(organisation["id"], "Team <i>X</i>", member_ids=[owner["id"]])
    template = flows.create_template(
        owner["id"], team["id"], "Consent form", PDF, [RecipientSpec("direct@example.com", "Direct")],
        direct_link=True,
    )  # fmt: skip
    signer = flows.use_direct_link(template["direct_link_token"], email="sam@example.com", name="Sam Signer")
    signing_service.join()
    envelope_id = flows.document(signer["document_id"])["envelope_id"]
    (told,) = [m for m in mailbox.to("olivia@") if m["Subject"] == "Document created from direct template"]
    link = re.search(rf"{BASE_URL}/t/(\S+)/documents/{envelope_id}", text_part(told))
    assert link is not None and re.fullmatch(r"team-i-x-i-[0-9a-f]{6}", link[1]), text_part(told)
    assert re.fullmatch(r"acme-b-inc-b-[0-9a-f]{6}", organisation["url"])
