"""Load the named SQL blocks of ``queries.sql`` and the migration files."""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, LiteralString

import psycopg

_BLOCK_NAME = re.compile(r"^-- ([a-z_]+) --$", re.MULTILINE)
_NAMED_PARAMETER = re.compile(r"%\((\w+)\)s")
_MIGRATION_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Query:
    """A named query, its ``%(name)s`` parameters turned positional once.

    psycopg binds a tuple several times faster than a dict of named parameters,
    which shows on the enqueue and claim paths; the SQL files stay readable.
    """

    name: str
    text: LiteralString
    parameters: tuple[str, ...]

    def execute(
        self,
        conn: psycopg.Connection[Any],
        values: Mapping[str, Any] | None = None,
        *,
        prepare: bool | None = None,
    ) -> psycopg.Cursor[Any]:
        """Run the query on ``conn`` with ``values`` by parameter name.

        Args:
            prepare: ``False`` plans it at each run, for the table as it is then (psycopg
                prepares a query from its fifth run, and PostgreSQL may keep one plan for it).

        Raises:
            KeyError: A parameter has no value.
        """
        arguments = tuple(values[name] for name in self.parameters) if values is not None else None
        return conn.execute(self.text, arguments, prepare=prepare)


def parse_queries(text: str) -> dict[str, Query]:
    """Split a queries file into ``{name: Query}``.

    Args:
        text: Blocks of a ``-- name --`` line, a ``--`` description line, then SQL.

    Returns:
        The queries by name, without their comment lines or trailing semicolon.

    Raises:
        ValueError: A name appears twice.
    """
    queries: dict[str, Query] = {}
    pieces = _BLOCK_NAME.split(text)
    for name, body in zip(pieces[1::2], pieces[2::2], strict=True):
        if name in queries:
            raise ValueError(f"query {name!r} is defined twice")
        lines = [line for line in body.strip().splitlines() if not line.startswith("--")]
        named = "\n".join(lines).strip().rstrip(";")
        parameters = tuple(_NAMED_PARAMETER.findall(named))
        queries[name] = Query(name, _NAMED_PARAMETER.sub("%s", named), parameters)
    return queries


def queries() -> dict[str, Query]:
    """Every query of ``docjobs/db/queries.sql`` (the job store's), parsed once."""
    return _load("queries.sql")


def domain_queries() -> dict[str, Query]:
    """Every query of ``docjobs/db/domain.sql`` (the domain store's), parsed once."""
    return _load("domain.sql")


def board_queries() -> dict[str, Query]:
    """Every query of ``docjobs/db/board.sql`` (the admin board's), parsed once."""
    return _load("board.sql")


def cron_queries() -> dict[str, Query]:
    """Every query of ``docjobs/db/cron.sql`` (the cron ledger's), parsed once."""
    return _load("cron.sql")


def flow_queries() -> dict[str, Query]:
    """Every query of ``docjobs/db/flow.sql`` (flow control's), parsed once."""
    return _load("flow.sql")


def joblog_queries() -> dict[str, Query]:
    """Every query of ``docjobs/db/joblogs.sql`` (the job log store's), parsed once."""
    return _load("joblogs.sql")


def rollup_queries() -> dict[str, Query]:
    """Every query of ``docjobs/db/rollups.sql`` (the job history rollups'), parsed once."""
    return _load("rollups.sql")


@functools.cache
def _load(filename: str) -> dict[str, Query]:
    return parse_queries(resources.files("docjobs.db").joinpath(filename).read_text("utf-8"))


@dataclass(frozen=True)
class Migration:
    """One migration file: ``migrations/NNNN_name.sql``."""

    version: int
    name: str
    sql: str = field(repr=False)

    @property
    def checksum(self) -> str:
        """SHA-256 of the file, to notice an applied migration edited afterwards."""
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()


def migrations() -> list[Migration]:
    """The migration files in version order."""
    found = []
    for entry in resources.files("docjobs.db").joinpath("migrations").iterdir():
        match = _MIGRATION_FILE.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text("utf-8")))
    return sorted(found, key=lambda migration: migration.version)


def schema() -> str:
    """The complete current schema (``schema.sql``)."""
    return resources.files("docjobs.db").joinpath("schema.sql").read_text("utf-8")
