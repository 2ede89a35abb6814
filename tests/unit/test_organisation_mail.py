"""The organisation emails' content and the support address setting (issue 22), without servers."""

from __future__ import annotations

from typing import Any

import pytest

from docjobs.errors import SettingsError
from docjobs.mail import organisations as mail
from docjobs.mail.message import render
from docjobs.settings import Settings

BASE = {"NEXT_PRIVATE_DATABASE_URL": "postgresql://db/docjobs", "NEXT_PRIVATE_ENCRYPTION_SECONDARY_KEY": "k"}
ORGANISATION: dict[str, Any] = {
    "id": "org_1", "name": "Acme", "url": "acme", "claim": "pro", "member_seats": 5, "member_count": 3,
    "document_quota": 100, "email_quota": None, "api_quota": 7,
    "owner_email": "olivia@example.com", "owner_name": "Olivia",
}  # fmt: skip
ADMIN = {"email": "olivia@example.com", "name": "Olivia"}


def test_the_support_address_is_unset_by_default_and_checked_when_set() -> None:
    assert Settings.from_environ(BASE).support_email is None
    assert (
        "help@example.com"
        == Settings.from_environ({**BASE, "NEXT_PUBLIC_SUPPORT_EMAIL": "help@example.com"}).support_email
    )
    with pytest.raises(SettingsError) as raised:
        Settings.from_environ({**BASE, "NEXT_PUBLIC_SUPPORT_EMAIL": "help.example.com"})
    assert str(raised.value).startswith("NEXT_PUBLIC_SUPPORT_EMAIL: ")
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize(
    ("kind", "subject", "says"),
    [
        ("quotaNearing", "Approaching Your Plan Limits", "is close to its monthly quota of documents"),
        ("quota", "Organisation Review Required", "has reached its monthly quota of documents"),
        ("rateLimit", "Organisation Review Required", "is sending documents faster than its plan allows"),
    ],
)
def test_a_limit_alerts_subject_follows_its_kind(kind: str, subject: str, says: str) -> None:
    email = mail.limit_alert(
        ORGANISATION, ADMIN, counter="document", kind=kind, period="2026-12", base_url="https://s.example"
    )
    assert subject == email.subject
    assert f'"Acme" {says} (2026-12).' == email.paragraphs[0]
    assert email.action is not None and "https://s.example/o/acme/settings/billing" == email.action.url


def test_the_support_notice_is_one_plain_text_part_with_the_plan_numbers() -> None:
    email = mail.limit_alert_to_support(
        ORGANISATION, counter="api", kind="rateLimit", period="2026-12", support_address="help@example.com"
    )
    message = render(email, from_name="Example Sign", from_address="sign@example.com")
    assert "text/plain" == message.get_content_type() and not message.is_multipart()
    body = message.get_content()
    assert "document quota: 100; email quota: unlimited; api quota: 7" in body
    assert "Members: 3 of 5 paid seats" in body
    assert "[Limits] Acme (org_1): api rateLimit 2026-12" == message["Subject"]


def test_a_members_name_stays_on_one_line_in_the_announcement() -> None:
    member = {"email": "nora@example.com", "name": "Nora\r\nBcc: evil@example.com"}
    email = mail.member_joined(ORGANISATION, member, ADMIN, "https://s.example")
    assert all("\n" not in paragraph for paragraph in email.paragraphs)
    assert "Nora Bcc: evil@example.com (nora@example.com)" in email.paragraphs[0]
