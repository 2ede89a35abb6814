"""A bulk send's CSV (docjobs/domain/bulk_send.py): which rows make a document, with whose addresses."""

from __future__ import annotations

from typing import Any

import pytest

from docjobs.domain import bulk_send
from docjobs.domain.bulk_send import RecipientValues, RowError

TEMPLATE: list[dict[str, Any]] = [
    {"position": 1, "email": "", "name": ""},
    {"position": 2, "email": "legal@example.com", "name": "Legal"},
]


def recipients(csv_content: str) -> list[dict[int, RecipientValues] | str]:
    """Each row's recipients, or its error's text."""
    found: list[dict[int, RecipientValues] | str] = []
    for row in bulk_send.check_content(csv_content).rows:
        try:
            found.append(bulk_send.row_recipients(row, TEMPLATE))
        except RowError as exc:
            found.append(str(exc))
    return found


def test_a_row_fills_the_recipients_it_names_and_keeps_the_templates_for_the_others() -> None:
    csv_content = (
        "recipient_1_email,recipient_1_name,recipient_2_email\n"
        'ann@example.com,"Ann, of Sales",\n'
        "\n"  # blank lines are skipped, and counted
        'bob@example.com,"Bob\nBrown",counsel@example.com\n'
    )
    assert [
        {
            1: RecipientValues("ann@example.com", "Ann, of Sales"),
            2: RecipientValues("legal@example.com", "Legal"),
        },
        {1: RecipientValues("bob@example.com", "Bob\nBrown"), 2: RecipientValues("counsel@example.com", "")},
    ] == recipients(csv_content)
    assert [1, 3] == [row.number for row in bulk_send.check_content(csv_content).rows]


@pytest.mark.parametrize(
    ("row", "why"),
    [
        ("ann@,Ann", "recipient_1_email 'ann@' is not a valid email address"),
        (",Ann", "recipient_1_email is missing"),
        ("ann@example.com," + "A" * 256, "recipient_1_name is longer than 255 characters"),
        ("ann@example.com,Ann,x", "it has 1 more value(s) than the header has columns"),
    ],
)
def test_a_bad_row_says_why_in_one_line(row: str, why: str) -> None:
    assert [why] == recipients(f"recipient_1_email,recipient_1_name\n{row}\n")


def test_a_column_for_a_recipient_the_template_lacks_fails_the_row() -> None:
    assert ["recipient_3_email: the template has no recipient 3"] == recipients(
        "recipient_1_email,recipient_3_email\nann@example.com,cy@example.com\n"
    )


def test_a_quoted_value_is_cut_short_in_the_error() -> None:
    quoted = repr("x" * 500)[: bulk_send.QUOTED_VALUE_CHARS - 3] + "..."
    assert [f"recipient_1_email {quoted} is not a valid email address"] == recipients(
        f"recipient_1_email\n{'x' * 500}\n"
    )


def _csv_of(size: int) -> str:
    """A CSV of :data:`bulk_send.MAX_ROWS` rows and exactly ``size`` bytes, its last character two bytes."""
    header, row = "recipient_1_email,note\n", "a@example.com,"
    left = size - len(header) - (len(row) + 1) * bulk_send.MAX_ROWS - 2  # "é" is two bytes
    rows = [row + "x" * (left // bulk_send.MAX_ROWS)] * bulk_send.MAX_ROWS
    rows[-1] += "x" * (left % bulk_send.MAX_ROWS) + "é"
    return header + "".join(r + "\n" for r in rows)


def test_exactly_the_maximum_of_rows_and_bytes_is_accepted() -> None:
    assert bulk_send.MAX_ROWS == len(bulk_send.check_content(_csv_of(bulk_send.MAX_CSV_BYTES)).rows)
    with pytest.raises(bulk_send.CsvError, match="is 524,289 bytes; at most 524,288 are allowed"):
        bulk_send.check_content(_csv_of(bulk_send.MAX_CSV_BYTES + 1))
    with pytest.raises(bulk_send.CsvError, match="more than 1,000 rows"):
        bulk_send.check_content("recipient_1_email\n" + "a@example.com\n" * (bulk_send.MAX_ROWS + 1))


def test_rows_are_numbered_by_their_place_in_the_file_and_keyed_by_their_order() -> None:
    # The outside trial's CSV: an all-empty row and a blank line before the bad rows.
    csv_content = "recipient_1_email,recipient_1_name\nok1@example.com,A\n,\nbad-email,B\n\nbad2,C\n"
    sheet = bulk_send.check_content(csv_content)
    assert [(1, 1), (3, 2), (5, 3)] == [(row.number, row.ordinal) for row in sheet.rows]
    assert [
        {1: RecipientValues("ok1@example.com", "A"), 2: RecipientValues("legal@example.com", "Legal")},
        "recipient_1_email 'bad-email' is not a valid email address",
        "recipient_1_email 'bad2' is not a valid email address",
    ] == recipients(csv_content)


def test_a_value_over_several_lines_is_one_row() -> None:
    sheet = bulk_send.check_content('recipient_1_email,note\na@example.com,"two\nlines"\nb@example.com,\n')
    assert [1, 2] == [row.number for row in sheet.rows]


@pytest.mark.parametrize(
    "csv_content",
    [
        '\ufeffrecipient_1_email,recipient_1_name\r\nann@example.com,"Ann, of Sales"\r\n',
        "recipient_1_email;recipient_1_name\nann@example.com;Ann, of Sales\n",
        "\ufeffRecipient_1_Email;Recipient_1_Name\r\nann@example.com;Ann, of Sales\r\n",
        "recipient_1_email\trecipient_1_name\nann@example.com\tAnn, of Sales\n",
        '\n" RECIPIENT_1_EMAIL ";"Recipient_1_name"\n"ann@example.com";"Ann, of Sales"\n',
    ],
    ids=["bom", "semicolons", "bom-semicolons-title-case", "tabs", "quoted-padded-upper-case"],
)
def test_a_spreadsheets_export_is_read_like_a_plain_csv(csv_content: str) -> None:
    assert [
        {
            1: RecipientValues("ann@example.com", "Ann, of Sales"),
            2: RecipientValues("legal@example.com", "Legal"),
        }
    ] == recipients(csv_content)


def test_a_header_named_twice_in_another_case_is_refused() -> None:
    with pytest.raises(bulk_send.CsvError, match="the CSV names column 'recipient_1_email' twice"):
        bulk_send.check_content("Recipient_1_Email,recipient_1_email\na@example.com,b@example.com\n")


@pytest.mark.parametrize(
    ("csv_content", "found"),
    [
        ("email;name\nann@example.com;Ann\n", "it has 'email', 'name' (read as semicolon-separated)"),
        (
            "a,b,c,d,e,f,g\n1,2,3,4,5,6,7\n",
            "it has 'a', 'b', 'c', 'd', 'e' and 2 more (read as comma-separated)",
        ),
        ("\ufeffrecipient_1_mail\nann@example.com\n", "it has 'recipient_1_mail' (read as comma-separated)"),
    ],
)
def test_a_header_naming_no_recipient_says_what_it_found(csv_content: str, found: str) -> None:
    with pytest.raises(bulk_send.CsvError) as refused:
        bulk_send.check_content(csv_content)
    assert f"the CSV's header names no recipient_<n>_email column; {found}" == str(refused.value)
