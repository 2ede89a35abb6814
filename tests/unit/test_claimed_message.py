"""A claimed message builds the Dramatiq message it stands for only when asked, and it is the same message.

The local consumer no longer builds a ``dramatiq.Message`` per claimed row (issue 21):
what Dramatiq and middleware ask of the proxy beyond its fields (``copy``, ``asdict``,
``str``) comes from a message built on first use, sharing the proxy's objects.
"""

from __future__ import annotations

import dramatiq

from docjobs.brokers.local.consumer import ClaimedMessage
from docjobs.db.claims import Claim


def claimed() -> ClaimedMessage:
    return ClaimedMessage(
        Claim("job-1", 2),
        queue_name="default",
        actor_name="app.job",
        args=(1,),
        kwargs={"documentId": 7},
        options={"retries": 1},
        message_timestamp=1_700_000_000_000,
    )


def test_the_message_it_stands_for_has_its_fields_and_shares_its_objects() -> None:
    proxy = claimed()

    message = proxy._message

    assert message == dramatiq.Message(
        queue_name="default",
        actor_name="app.job",
        args=(1,),
        kwargs={"documentId": 7},
        options={"retries": 1},
        message_id="job-1",
        message_timestamp=1_700_000_000_000,
    )
    assert message.options is proxy.options  # a middleware's change to options is the message's
    assert proxy._message is message  # built once


def test_what_dramatiq_asks_of_a_proxy_still_answers() -> None:
    proxy = claimed()
    proxy.options["eta"] = 5

    assert proxy.asdict()["options"] == {"retries": 1, "eta": 5}
    assert proxy.copy(queue_name="default.DQ").queue_name == "default.DQ"
    assert str(proxy) == "app.job(1, documentId=7)"
    assert proxy.claim == Claim("job-1", 2)
    assert proxy.failed is False
