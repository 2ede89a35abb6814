"""Flow control a job type declares: concurrency, throttle, rate limit, debounce.

Each limit applies per job type, and per value of one payload field when it names a
``key`` (``Concurrency(1, key="documentId")``: one run at a time per document). The
declarations are plain data: the provider decides how to honour them (docjobs' own
gate on local and bullmq, the function's own options on Inngest).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from docjobs import errors

#: The longest period a throttle, rate limit or debounce may have (Inngest's bound for
#: rate limits is 24 h; one bound for all keeps the declarations portable).
MAX_PERIOD_SECONDS = 24 * 60 * 60
#: The most runs a limit may allow at once or per period.
MAX_LIMIT = 100_000


class FlowDeclarationError(errors.DocjobsError, ValueError):
    """A flow-control declaration is wrong; raised when the actor is declared."""


@dataclasses.dataclass(frozen=True)
class Concurrency:
    """At most ``limit`` runs at once (per value of ``key``), across every worker."""

    limit: int
    key: str | None = None


@dataclasses.dataclass(frozen=True)
class Throttle:
    """At most ``limit`` starts per ``period`` seconds (per ``key``); later ones wait their turn."""

    limit: int
    period: float
    key: str | None = None


@dataclasses.dataclass(frozen=True)
class RateLimit:
    """At most ``limit`` runs per ``period`` seconds (per ``key``); the rest are dropped, not run."""

    limit: int
    period: float
    key: str | None = None


@dataclasses.dataclass(frozen=True)
class Debounce:
    """Run once ``period`` seconds after the last send (per ``key``), with that send's payload.

    Earlier sends within the period are dropped: ten reseals of one document within
    10 s are one reseal.
    """

    period: float
    key: str | None = None


Limit = Concurrency | Throttle | RateLimit | Debounce


@dataclasses.dataclass(frozen=True)
class Flow:
    """The flow control of one job type, its keys resolved to payload aliases."""

    concurrency: Concurrency | None = None
    throttle: Throttle | None = None
    rate_limit: RateLimit | None = None
    debounce: Debounce | None = None

    def __bool__(self) -> bool:
        return any((self.concurrency, self.throttle, self.rate_limit, self.debounce))


NO_FLOW = Flow()


def declare(
    job_id: str,
    aliases: Mapping[str, str],
    *,
    concurrency: Concurrency | None = None,
    throttle: Throttle | None = None,
    rate_limit: RateLimit | None = None,
    debounce: Debounce | None = None,
) -> Flow:
    """Check a job type's declarations, naming each key by the payload field's alias.

    Args:
        job_id: The job id, for the error messages.
        aliases: The payload's fields, parameter name to camelCase alias.

    Raises:
        FlowDeclarationError: A limit or period out of bounds, or a key that is not a
            field of the payload; naming the job and the declaration.
    """
    checked: dict[str, Any] = {}
    for name, limit, kind in (
        ("concurrency", concurrency, Concurrency),
        ("throttle", throttle, Throttle),
        ("rate_limit", rate_limit, RateLimit),
        ("debounce", debounce, Debounce),
    ):
        if limit is None:
            continue
        where = f"{job_id}: {name}"
        if not isinstance(limit, kind):
            raise FlowDeclarationError(f"{where} must be a docjobs.flow.{kind.__name__}, not {limit!r}")
        if not isinstance(limit, Debounce):
            _check_count(where, limit.limit)
        if not isinstance(limit, Concurrency):
            _check_period(where, limit.period)
        checked[name] = dataclasses.replace(limit, key=_alias(where, limit.key, aliases))
    return Flow(**checked) if checked else NO_FLOW


def _check_count(where: str, limit: object) -> None:
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_LIMIT:
        raise FlowDeclarationError(
            f"{where}: limit must be a whole number from 1 to {MAX_LIMIT}, not {limit!r}"
        )


def _check_period(where: str, period: object) -> None:
    if (
        not isinstance(period, int | float)
        or isinstance(period, bool)
        or not 1 <= period <= MAX_PERIOD_SECONDS
    ):
        raise FlowDeclarationError(
            f"{where}: period must be from 1 to {MAX_PERIOD_SECONDS} seconds, not {period!r}"
        )


def _alias(where: str, key: str | None, aliases: Mapping[str, str]) -> str | None:
    """The payload alias ``key`` names (by parameter name or alias), or None for no key."""
    if key is None:
        return None
    if key in aliases:
        return aliases[key]
    if key in aliases.values():
        return key
    fields = ", ".join(sorted(aliases.values())) or "none"
    raise FlowDeclarationError(f"{where}: key {key!r} is not a field of the payload (its fields: {fields})")
