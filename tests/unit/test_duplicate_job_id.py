"""A job id declared twice is refused in one line naming both declarations (issue 20)."""

from __future__ import annotations

import logging
import re
import sys

import pytest

import docjobs
from docjobs import errors, registry
from docjobs import logging as docjobs_logging
from docjobs.registry.declarations import DuplicateJobId


@docjobs.actor("unit.twice")
def first(*, key: str) -> None: ...


def test_a_second_declaration_names_both_places_and_is_a_value_and_an_import_error() -> None:
    with pytest.raises(DuplicateJobId) as refused:

        @docjobs.actor("unit.twice")
        def second(*, key: str) -> None: ...

    here = re.escape(__file__.rpartition("/")[2])
    assert re.fullmatch(
        rf"job id 'unit\.twice' is already declared by {__name__}\.first \(\S*{here}:\d+\); "
        rf"{__name__}\.test_a_second_declaration_names_both_places_and_is_a_value_and_an_import_error"
        rf"\.<locals>\.second \(\S*{here}:\d+\) declares it again: give your job an id of its own",
        str(refused.value),
    ), str(refused.value)
    # A ValueError as before; an ImportError for Dramatiq's worker, which reports those in a line.
    assert isinstance(refused.value, ValueError) and isinstance(refused.value, ImportError)
    assert isinstance(refused.value, errors.DocjobsError)
    assert registry.get("unit.twice").fn is first.fn


def test_the_log_line_of_a_refused_import_is_its_message_without_a_traceback() -> None:
    try:
        raise DuplicateJobId("job id 'x' is already declared by a (a.py:1); b (b.py:2) declares it again")
    except DuplicateJobId:
        record = logging.LogRecord(
            "dramatiq", logging.ERROR, __file__, 1, "Failed to import module.", None, sys.exc_info()
        )
    docjobs_logging.SafeRecords().filter(record)
    line = docjobs_logging.KeyValueFormatter("%(levelname)s %(name)s: %(message)s").format(record)
    assert (
        "ERROR dramatiq: Failed to import module. DuplicateJobId: job id 'x' is already declared by a (a.py:1); "
        "b (b.py:2) declares it again"
    ) == line
