from __future__ import annotations

import pytest

from docjobs.db import sql


def test_query_blocks_are_parsed_without_comments_or_semicolons() -> None:
    text = "-- one --\n-- The first.\nSELECT 1;\n\n-- two --\n-- The second.\nSELECT\n  2;\n"
    parsed = sql.parse_queries(text)
    assert {"one": "SELECT 1", "two": "SELECT\n  2"} == {name: query.text for name, query in parsed.items()}


def test_a_duplicate_query_name_is_refused() -> None:
    with pytest.raises(ValueError, match="'one' is defined twice"):
        sql.parse_queries("-- one --\nSELECT 1;\n-- one --\nSELECT 2;\n")


def test_every_query_of_the_package_is_named_entity_first() -> None:
    names = sql.queries()
    assert names
    entities = {"job", "queue", "worker", "maintenance", "task", "migration", "health", "database"}
    assert {name.split("_")[0] for name in names} <= entities


def test_migrations_are_numbered_in_order() -> None:
    versions = [migration.version for migration in sql.migrations()]
    assert versions == sorted(versions)
    assert 1 == versions[0]


def test_named_parameters_become_positional_in_order() -> None:
    (query,) = sql.parse_queries("-- q --\nSELECT %(b)s, %(a)s, %(b)s;\n").values()
    assert "SELECT %s, %s, %s" == query.text
    assert ("b", "a", "b") == query.parameters
