"""Behaviour 14 (docjobs): a second jobs.trigger with the same id= is a no-op."""

from __future__ import annotations

import pytest

from docjobs import jobs
from tests.support.providers import Calls, Harness

pytestmark = pytest.mark.docjobs_only


def test_a_second_trigger_with_the_same_id_sends_nothing(provider: Harness) -> None:
    calls = Calls()

    def once(key: str) -> None:
        calls.add(key)

    provider.actor(once)
    provider.run()
    first = jobs.trigger("conformance.once", {"key": "first"}, id="doc-73-seal")
    second = jobs.trigger("conformance.once", {"key": "second"}, id="doc-73-seal")
    provider.join()
    third = jobs.trigger("conformance.once", {"key": "after-it-ran"}, id="doc-73-seal")
    provider.join()
    assert "doc-73-seal" == first.message_id == second.message_id == third.message_id
    assert ["first"] == calls.values()
