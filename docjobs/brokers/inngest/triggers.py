"""Which events may start which function: what a call's signature is bound to.

Inngest signs a call's body, not its URL, and the URL's ``?fnId=`` names the
function to run: the same signed body sent with another ``fnId`` would run another
function with the first one's event. So, with signing keys, the serve endpoint runs
a call only if its event (and each event of its batch) is one that starts the
function named: an event trigger's name, ``inngest/scheduled.timer`` for a cron
trigger, ``inngest/function.failed`` for an ``on_failure`` handler (its config
declares that trigger). Anything else (``inngest/function.invoked`` included: no
docjobs function is invoked by another) is refused.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import inngest
from inngest._internal import server_lib

from docjobs.brokers.inngest.events import SCHEDULED_EVENT

#: The longest part of a request value an answer or a log line shows.
SHOWN_CHARS = 100
#: Ends an event trigger that names a family of events (``app/user.*``).
WILDCARD = "*"


class CallRefused(Exception):
    """The call's events cannot start the function it names."""


def trigger_events(functions: Sequence[inngest.Function[Any]], url: str) -> dict[str, frozenset[str]]:
    """Each function's id (as ``fnId`` names it), with the events that start it.

    Args:
        functions: The functions served.
        url: Where they are served (the SDK needs one to build their configs).
    """
    table: dict[str, frozenset[str]] = {}
    for function in functions:
        config = function.get_config(url)
        for part in (config.main, config.on_failure):
            if part is not None:
                table[part.id] = frozenset(_event_of(trigger) for trigger in part.triggers)
    return table


def check_call(document: Any, function_id: str, table: Mapping[str, frozenset[str]]) -> None:
    """Refuse a call body whose events cannot start ``function_id`` (a key of ``table``).

    Raises:
        CallRefused: The body has no event, an event without a name, or one that
            does not start the function.
    """
    if not isinstance(document, dict):
        raise CallRefused("the signed body is not a call (a JSON object)")
    events = [document.get("event")]
    batch = document.get("events")
    if batch is not None:
        if not isinstance(batch, list):
            raise CallRefused("the signed call's events are not a list")
        events.extend(batch)
    starts = table[function_id]
    for event in events:
        name = event.get("name") if isinstance(event, dict) else None
        if not isinstance(name, str):
            raise CallRefused("an event of the signed call has no name")
        if not any(_matches(trigger, name) for trigger in starts):
            shown = name[:SHOWN_CHARS]
            raise CallRefused(f"the signed event {shown!r} does not start function {function_id!r}")


def _event_of(trigger: server_lib.TriggerEvent | server_lib.TriggerCron) -> str:
    return trigger.event if isinstance(trigger, server_lib.TriggerEvent) else SCHEDULED_EVENT


def _matches(trigger: str, name: str) -> bool:
    if trigger.endswith(WILDCARD):
        return name.startswith(trigger[: -len(WILDCARD)])
    return name == trigger
