"""Run inside the compose stack's web container (``podman exec -i <web> python -c "$(cat this)" < document.pdf``).

Sends a document to two signers, signs it as both, and waits for the stack to seal it: this
process only writes the domain rows and enqueues (the jobs run in the stack's worker
container). Prints one JSON line: the document's final status, how long the sealing took and
the sealed PDF in base64. Exits 1 if the document is not sealed within the deadline.

The document comes on stdin: the image ships docjobs alone, not the devkit that makes samples.
"""

from __future__ import annotations

import base64
import json
import sys
import time

from docjobs import runtime
from docjobs.domain import FieldSpec, Flows, Metadata, RecipientSpec

#: How long the stack may take to seal the signed document.
SEAL_DEADLINE_SECONDS = 120.0
POLL_SECONDS = 0.2


def main() -> int:
    current = runtime.configure()
    import docjobs.actors  # noqa: F401 - declares the job types the flows trigger

    flows = Flows()
    owner = flows.create_user(f"owner.{time.time_ns()}@example.com", "Olivia Owner")
    document = flows.create_document(
        owner["id"], "Compose lease", sys.stdin.buffer.read(),
        [RecipientSpec("alice@example.com", "Alice"), RecipientSpec("bob@example.com", "Bob")],
        [FieldSpec(recipient=0, type="SIGNATURE", page=2, position_x=10, position_y=75, width=30, height=6),
         FieldSpec(recipient=1, type="SIGNATURE", page=2, position_x=55, position_y=75, width=30, height=6)],
    )  # fmt: skip
    metadata = Metadata(ip_address="203.0.113.7", user_agent="docjobs-compose-test")
    flows.send_document(document["id"], metadata)
    with current.require_database().connection() as conn:
        fields = {field["recipient_id"]: field["id"] for field in flows.store.fields(conn, document["id"])}
    started = time.monotonic()
    for recipient in flows.recipients(document["id"]):
        flows.open_document(recipient["token"], metadata)
        flows.sign(recipient["token"], {fields[recipient["id"]]: recipient["name"]}, metadata)
    deadline = started + SEAL_DEADLINE_SECONDS
    sealed = flows.document(document["id"])
    while sealed["status"] != "COMPLETED" and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
        sealed = flows.document(document["id"])
    seconds = time.monotonic() - started
    pdf = b""
    if sealed["status"] == "COMPLETED":
        with current.require_database().connection() as conn:
            data = current.domain.document_data(conn, int(sealed["current_data_id"]))
        pdf = bytes(data["data"]) if data is not None else b""
    print(json.dumps({
        "documentId": document["id"], "status": sealed["status"], "sealSeconds": round(seconds, 2),
        "pdf": base64.b64encode(pdf).decode(),
    }))  # fmt: skip
    current.close()
    return 0 if pdf else 1


if __name__ == "__main__":
    sys.exit(main())
