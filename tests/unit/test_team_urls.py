"""URLs made from team and organisation names (docjobs/domain/organisations.py): [a-z0-9-] only."""

from __future__ import annotations

import re

import pytest

from docjobs.domain import FlowError
from docjobs.domain.organisations import MAX_SLUG_CHARS, checked_url, url_from_name


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("Team <i>X</i>", "team-i-x-i"),
        ("Sales & Marketing / EU", "sales-marketing-eu"),
        ("Équipe Über", "equipe-uber"),
        ("  --Legal--  ", "legal"),
        ("<>&\"'", "team"),
        ("営業", "team"),
        ("a" * 100, "a" * MAX_SLUG_CHARS),
    ],
)
def test_a_url_from_a_name_keeps_only_lower_case_letters_digits_and_dashes(name: str, slug: str) -> None:
    url = url_from_name(name, fallback="team")
    assert re.fullmatch(rf"{slug}-[0-9a-f]{{6}}", url), url


def test_two_urls_from_one_name_differ() -> None:
    assert url_from_name("Sales", fallback="team") != url_from_name("Sales", fallback="team")


@pytest.mark.parametrize("url", ["Sales", "sales team", "sales/<b>", "sales\n", "équipe"])
def test_a_given_url_with_other_characters_is_refused_in_one_line(url: str) -> None:
    with pytest.raises(FlowError) as refused:
        checked_url(url)
    assert f"url {url!r} may hold only lower-case letters, digits and '-'" == str(refused.value)
    assert 1 == len(str(refused.value).splitlines())


def test_a_given_url_of_letters_digits_and_dashes_is_kept() -> None:
    assert "sales-2026" == checked_url("sales-2026")
