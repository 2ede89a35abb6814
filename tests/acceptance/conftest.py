from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.processes import Processes


@pytest.fixture
def processes() -> Iterator[Processes]:
    """Start docjobs commands as subprocesses; all are stopped after the test."""
    running = Processes()
    yield running
    running.stop_all()
