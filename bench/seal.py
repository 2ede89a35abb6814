"""Seal a 50-page PDF with 100 filled fields; print the timings and peak memory as JSON.

Run in a fresh process by ``bench/run.py`` so the peak RSS is the seal's own.
"""

from __future__ import annotations

import json
import resource
import statistics
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from docjobs_devkit.pdfs import sample_pdf

from docjobs.pdf.identity import identity_from_pkcs12, write_development_certificate
from docjobs.pdf.seal import SealInput, SignatureSettings, seal_pdf

PAGES = 50
FIELDS = 100
RUNS = 3
KINDS = ["SIGNATURE", "INITIALS", "NAME", "EMAIL", "DATE", "TEXT", "NUMBER", "CHECKBOX", "RADIO", "DROPDOWN"]
VALUES = {
    "INITIALS": "AA",
    "NAME": "Alice Adams",
    "EMAIL": "alice@example.com",
    "DATE": "2026-11-28",
    "TEXT": "Flat 4B",
    "NUMBER": "1250",
    "CHECKBOX": '["Yes"]',
    "RADIO": "No",
    "DROPDOWN": "Monthly",
}


def source() -> SealInput:
    now = datetime.now(UTC)
    recipients = [
        {
            "id": r,
            "name": f"Signer {r}",
            "email": f"signer{r}@example.com",
            "role": "SIGNER",
            "sent_at": now,
            "rejection_reason": None,
        }
        for r in range(1, 5)
    ]
    fields: list[dict[str, Any]] = []
    for index in range(FIELDS):
        kind = KINDS[index % len(KINDS)]
        fields.append(
            {
                "id": index,
                "recipient_id": 1 + index % 4,
                "type": kind,
                "page": 1 + index % PAGES,
                "position_x": 10.0,
                "position_y": 10.0 + (index % 8) * 10,
                "width": 30.0,
                "height": 4.0,
                "inserted": True,
                "custom_text": VALUES.get(kind),
                "signature_image": None,
                "typed_signature": "Alice Adams" if kind == "SIGNATURE" else None,
                "field_meta": {"values": [{"value": "Yes"}, {"value": "No"}]}
                if kind in ("CHECKBOX", "RADIO")
                else None,
            }
        )
    audit = [
        {
            "type": "DOCUMENT_OPENED",
            "data": {"recipientId": 1},
            "created_at": now,
            "user_id": None,
            "email": None,
            "name": "Signer 1",
            "ip_address": "203.0.113.7",
            "user_agent": "bench",
        }
    ] * 40
    return SealInput(
        sample_pdf(PAGES, title="Benchmark"),
        {"title": "Benchmark", "envelope_id": "envelope_bench"},
        recipients,
        fields,
        audit,
        rejected=False,
    )


def main() -> int:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "cert.p12"
        write_development_certificate(path)
        identity = identity_from_pkcs12(path.read_bytes(), None, source="bench")
    settings = SignatureSettings(location="https://sign.example.com")
    sealing = source()
    started = time.perf_counter()
    sealed = seal_pdf(sealing, identity, settings)  # cold: loads the fonts, warms the imports
    first = time.perf_counter() - started
    warm = []
    for _ in range(RUNS):
        started = time.perf_counter()
        seal_pdf(sealing, identity, settings)
        warm.append(time.perf_counter() - started)
    tracemalloc.start()  # last: tracing slows Python down several times
    seal_pdf(sealing, identity, settings)
    traced_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(
        json.dumps(
            {
                "pages": PAGES,
                "fields": FIELDS,
                "first_seconds": first,
                "seconds": statistics.median(warm),
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "python_peak_mb": traced_peak / 1e6,
                "output_bytes": len(sealed),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
