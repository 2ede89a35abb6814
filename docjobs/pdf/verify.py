"""Check a sealed PDF's signature with pyHanko, as any PDF reader would."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from io import BytesIO

from asn1crypto import x509 as asn1_x509
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext


@dataclass(frozen=True)
class Verification:
    """What a signature check found."""

    intact: bool  # the signed bytes are unchanged
    valid: bool  # the signature matches the certificate, which chains to a trusted root
    whole_file: bool  # the signature covers the entire file
    signer: str

    @property
    def ok(self) -> bool:
        return self.intact and self.valid and self.whole_file


def verify(pdf: bytes, trusted: Sequence[asn1_x509.Certificate]) -> Verification:
    """Check the first signature of ``pdf`` against ``trusted`` roots.

    Raises:
        ValueError: The PDF has no signature.
    """
    signatures = PdfFileReader(BytesIO(pdf)).embedded_signatures
    if not signatures:
        raise ValueError("the PDF is not signed")
    status = validate_pdf_signature(signatures[0], ValidationContext(trust_roots=list(trusted)))
    return Verification(
        intact=bool(status.intact),
        valid=bool(status.valid and status.trusted),
        whole_file=status.coverage is not None and status.coverage.name == "ENTIRE_FILE",
        signer=str(status.signing_cert.subject.human_friendly),
    )
