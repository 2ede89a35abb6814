"""Job actors: Dramatiq actors named by job id, with a payload model checked at send.

The payload model is built from the actor function's keyword parameters, so
``seal_document.send(document_id=73)`` is type-checked against the function and
validated at run time, and ``jobs.trigger("internal.seal-document", {"documentId": 73})``
accepts the camelCase payload of the reference service. Unknown keys are dropped.

The package, from the bottom up:

- ``payloads``: the payload model of a function, and the errors it raises;
- ``positional``: Dramatiq's positional shape of a payload (callbacks and pipelines
  hand an actor positional arguments) and the send-time checks of callbacks and
  pipeline steps;
- ``job_actor``: :class:`JobActor`, checking its messages when built and when sent;
- ``declarations``: the registry of actors and the broker they are bound to.

Code outside the package uses the names below (``registry.get``, ``registry.JobActor``).
"""

from __future__ import annotations

from docjobs.registry.declarations import (
    DEFAULT_QUEUE,
    DEFAULT_VERSION,
    actor,
    bind_all,
    bound,
    check_links,
    declare_plain,
    declared,
    forget,
    get,
    plain_actors,
)
from docjobs.registry.job_actor import SLOT_OPTION, JobActor
from docjobs.registry.payloads import payload_error, payload_model_for
from docjobs.registry.positional import CALLBACK_ARGUMENTS, positional_fields

__all__ = [
    "CALLBACK_ARGUMENTS",
    "DEFAULT_QUEUE",
    "DEFAULT_VERSION",
    "SLOT_OPTION",
    "JobActor",
    "actor",
    "bind_all",
    "bound",
    "check_links",
    "declare_plain",
    "declared",
    "forget",
    "get",
    "payload_error",
    "payload_model_for",
    "plain_actors",
    "positional_fields",
]
