"""A bulk send's CSV: its bounds, its rows, and the recipients each row names (issue 22).

The CSV has a header row, then one row per document. Columns ``recipient_<n>_email``
and ``recipient_<n>_name`` fill the template's recipient number ``n``; an empty or
absent column keeps the template's own value. Rows are numbered by their place in
the file, from 1 for the first after the header, blank lines counted, so the owner can
find a failed row in the spreadsheet; blank rows are skipped. Spreadsheet exports are
read as they come: a leading UTF-8 BOM, ``,``, ``;`` or tab separators (decided from
the header row), header names in any case with spaces around them.

:func:`check_content` is what a send refuses (size, row count, no usable header);
:func:`row_recipients` is what makes one row fail while the others go on.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass

#: Rows one bulk send may hold (the reference allows 100; issue 22 asks for 1,000).
MAX_ROWS = 1_000
#: Size of the CSV, in bytes (UTF-8): 1,000 rows of about 500 bytes, and well under
#: the payload limit (``NEXT_PRIVATE_JOBS_MAX_PAYLOAD_BYTES``, 1 MiB by default).
MAX_CSV_BYTES = 512 * 1024
#: Longest recipient name, in characters.
MAX_NAME_CHARS = 255
#: How much of a refused value a row's error quotes, in characters.
QUOTED_VALUE_CHARS = 60

#: Separators a header row may use, the first preferred on a tie: Excel writes ``;`` in
#: locales whose decimal mark is a comma, and tabs when "text" is chosen.
SEPARATORS = (",", ";", "\t")
#: Header columns a refusal quotes, when the header names no recipient.
QUOTED_COLUMNS = 5

_RECIPIENT_COLUMN = re.compile(r"^recipient_([1-9][0-9]{0,3})_(email|name)$")
_BOM = "\ufeff"


class CsvError(ValueError):
    """The CSV cannot be used at all."""


class RowError(ValueError):
    """One row cannot make a document; the message says why."""


@dataclass(frozen=True)
class Row:
    """One data row and its values by (lower-case) column.

    ``number`` is its place in the file (1 = the first after the header, blank lines
    counted), for the owner; ``ordinal`` its place among the rows kept (blank ones
    skipped), which names its document's ``request_key`` and step, as before blank
    lines were counted, so a job in flight across an upgrade finds its documents.
    """

    number: int
    ordinal: int
    values: dict[str, str]
    extra_values: int = 0


@dataclass(frozen=True)
class Sheet:
    """The parsed CSV."""

    columns: tuple[str, ...]
    rows: tuple[Row, ...]


@dataclass(frozen=True)
class RecipientValues:
    """A row's email and name for one of the template's recipients."""

    email: str
    name: str


def check_content(content: str) -> Sheet:
    """Parse a bulk send's CSV, refusing one no row of which could be used.

    Raises:
        CsvError: Larger than :data:`MAX_CSV_BYTES`, not CSV, no header naming a
            ``recipient_<n>_email`` column, a column named twice, no rows, or more
            than :data:`MAX_ROWS` rows.
    """
    size = len(content.encode("utf-8", "surrogatepass"))
    if size > MAX_CSV_BYTES:
        raise CsvError(f"the CSV is {size:,} bytes; at most {MAX_CSV_BYTES:,} are allowed")
    content = content.removeprefix(_BOM)
    separator = _separator(content)
    reader = csv.reader(io.StringIO(content, newline=""), delimiter=separator, strict=True)
    header: list[str] | None = None
    rows: list[Row] = []
    number = 0
    try:
        for values in reader:
            if header is not None:
                number += 1
            if not any(value.strip() for value in values):
                continue
            if header is None:
                header = [value.strip().lower() for value in values]
                _check_header(header, values, separator)
                continue
            if len(rows) == MAX_ROWS:
                raise CsvError(f"the CSV has more than {MAX_ROWS:,} rows")
            extra = max(0, len(values) - len(header))
            rows.append(Row(number, len(rows) + 1, dict(zip(header, values, strict=False)), extra))
    except csv.Error as exc:
        raise CsvError(f"the CSV cannot be read at line {reader.line_num}: {exc}") from None
    if header is None:
        raise CsvError("the CSV is empty; it needs a header row and a row per document")
    if not rows:
        raise CsvError("the CSV has a header but no rows")
    return Sheet(tuple(header), tuple(rows))


def _separator(content: str) -> str:
    """The separator that splits the header row (the first non-blank line) into the most columns."""
    line = next((line for line in io.StringIO(content) if line.strip(" \t,;\r\n")), "")

    def columns(separator: str) -> int:
        try:
            return len(next(csv.reader([line], delimiter=separator), []))
        except csv.Error:
            return 0

    return max(SEPARATORS, key=columns)  # max keeps the first of equals: "," on a tie


def _check_header(header: list[str], as_written: list[str], separator: str) -> None:
    seen: set[str] = set()
    for column, written in zip(header, as_written, strict=True):
        if column in seen:
            raise CsvError(f"the CSV names column {_quoted(written.strip())} twice")
        seen.add(column)
    if not any(_RECIPIENT_COLUMN.match(column) and column.endswith("_email") for column in header):
        found = ", ".join(_quoted(column.strip()) for column in as_written[:QUOTED_COLUMNS])
        more = len(as_written) - QUOTED_COLUMNS
        found += f" and {more} more" if more > 0 else ""
        raise CsvError(
            f"the CSV's header names no recipient_<n>_email column; it has {found}"
            f" (read as {_SEPARATOR_NAMES[separator]}-separated)"
        )


_SEPARATOR_NAMES = {",": "comma", ";": "semicolon", "\t": "tab"}


def recipient_numbers(columns: tuple[str, ...]) -> set[int]:
    """The recipient numbers the CSV's columns name."""
    return {int(match[1]) for column in columns if (match := _RECIPIENT_COLUMN.match(column))}


def row_recipients(row: Row, template_recipients: list[dict[str, object]]) -> dict[int, RecipientValues]:
    """The email and name of each of the template's recipients for ``row``.

    Args:
        row: The row.
        template_recipients: The template's recipients (``position``, ``email``, ``name``).

    Returns:
        The values by recipient number.

    Raises:
        RowError: The row names a recipient the template lacks, has more values than
            the header, leaves a recipient without an email address, gives an address
            that is not one, or a name longer than :data:`MAX_NAME_CHARS`.
    """
    if row.extra_values:
        raise RowError(f"it has {row.extra_values} more value(s) than the header has columns")
    by_number = {int(str(r["position"])): r for r in template_recipients}
    for number in sorted(recipient_numbers(tuple(row.values))):
        if number not in by_number:
            raise RowError(f"recipient_{number}_email: the template has no recipient {number}")
    filled: dict[int, RecipientValues] = {}
    for number, recipient in sorted(by_number.items()):
        email = (row.values.get(f"recipient_{number}_email") or "").strip()
        name = (row.values.get(f"recipient_{number}_name") or "").strip()
        if not email:
            email, name = str(recipient["email"]), name or str(recipient["name"])
        if not email:
            raise RowError(f"recipient_{number}_email is missing")
        if not _usable_address(email):
            raise RowError(f"recipient_{number}_email {_quoted(email)} is not a valid email address")
        if len(name) > MAX_NAME_CHARS:
            raise RowError(f"recipient_{number}_name is longer than {MAX_NAME_CHARS} characters")
        filled[number] = RecipientValues(email, name)
    return filled


def _usable_address(address: str) -> bool:
    # Imported by the first bulk send: a worker that runs none need not load it. The same
    # rules as the email jobs' (mail/headers.py), so a row accepted here can be emailed.
    import email_validator

    try:
        email_validator.validate_email(
            address, check_deliverability=False, globally_deliverable=False, allow_smtputf8=False
        )
    except email_validator.EmailNotValidError:
        return False
    return True


def _quoted(value: str) -> str:
    text = repr(value)
    return text if len(text) <= QUOTED_VALUE_CHARS else text[: QUOTED_VALUE_CHARS - 3] + "..."
