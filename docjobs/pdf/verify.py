"""Check a sealed PDF's signature with pyHanko, as any PDF reader would (``docjobs verify``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from io import BytesIO

from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives.serialization import Encoding, pkcs12
from pyhanko.keys import load_certs_from_pemder_data
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext


class Unreadable(ValueError):
    """The file is not a PDF (or a certificate) that can be read."""


class NotSigned(ValueError):
    """The PDF carries no signature."""


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

    def findings(self, trusted_source: str) -> list[str]:
        """One line per check, ``NOT`` on those that fail, for people to read.

        Args:
            trusted_source: What the certificates trusted came from (a file name).
        """
        return [
            f"signed by {self.signer}",
            "intact: the signed bytes are unchanged"
            if self.intact
            else "NOT intact: the signed bytes were changed after signing",
            f"valid: the signature verifies against {trusted_source}"
            if self.valid
            else f"NOT valid: the signature does not verify against {trusted_source}",
            "whole file: the signature covers every byte of the file"
            if self.whole_file
            else "NOT the whole file: bytes were added after the signature",
        ]


def verify(pdf: bytes, trusted: Sequence[asn1_x509.Certificate]) -> Verification:
    """Check the first signature of ``pdf`` against ``trusted`` roots.

    Raises:
        Unreadable: ``pdf`` is not a PDF pyHanko can read (a ``ValueError``).
        NotSigned: The PDF has no signature (a ``ValueError``).
    """
    try:
        signatures = PdfFileReader(BytesIO(pdf)).embedded_signatures
    except PdfError as exc:
        raise Unreadable(f"not a readable PDF: {exc}") from exc
    if not signatures:
        raise NotSigned("the PDF is not signed")
    status = validate_pdf_signature(signatures[0], ValidationContext(trust_roots=list(trusted)))
    return Verification(
        intact=bool(status.intact),
        valid=bool(status.valid and status.trusted),
        whole_file=status.coverage is not None and status.coverage.name == "ENTIRE_FILE",
        signer=str(status.signing_cert.subject.human_friendly),
    )


def read_certificates(data: bytes) -> list[asn1_x509.Certificate]:
    """The certificates of a PEM or DER file, or of a PKCS#12 bundle without a passphrase.

    Raises:
        Unreadable: None of these, or a PKCS#12 bundle that needs a passphrase.
    """
    try:
        certificates = list(load_certs_from_pemder_data(data))
        for certificate in certificates:
            _ = certificate.native  # asn1crypto parses lazily: a PKCS#12 bundle fails here
        return certificates
    except (ValueError, TypeError):
        pass  # not PEM or DER: perhaps PKCS#12, docjobs' own form of the signing certificate
    try:
        _, main, others = pkcs12.load_key_and_certificates(data, None)
    except (ValueError, TypeError) as exc:
        reason = "neither a certificate (PEM or DER) nor a PKCS#12 bundle without a passphrase"
        raise Unreadable(reason) from exc
    found = [cert for cert in (main, *others) if cert is not None]
    if not found:
        raise Unreadable("the PKCS#12 bundle holds no certificate")
    return [asn1_x509.Certificate.load(cert.public_bytes(Encoding.DER)) for cert in found]
