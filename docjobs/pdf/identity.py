"""The certificate that seals documents: loaded from PKCS#12, or made for development.

``NEXT_PRIVATE_SIGNING_LOCAL_FILE_CONTENTS`` (base64) wins over
``NEXT_PRIVATE_SIGNING_LOCAL_FILE_PATH``; ``NEXT_PRIVATE_SIGNING_PASSPHRASE`` opens it.
In production a missing or unreadable certificate stops start-up with one line
(the reference's most reported failure is documents stuck PENDING because its
seal job kept failing on ``cert.p12``, issues #1399 and #1663). In development,
when none is given, a self-signed certificate is generated once and kept under
the data directory.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import os
from dataclasses import dataclass
from pathlib import Path

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID
from pyhanko.sign import signers

from docjobs import errors
from docjobs.settings import Settings

DEV_CERTIFICATE_FILE = "signing-certificate.p12"
DEV_CERTIFICATE_NAME = "docjobs development signing certificate"
DEV_CERTIFICATE_YEARS = 10
DEV_KEY_BITS = 2048


@dataclass(frozen=True)
class SigningIdentity:
    """A signer for pyHanko and the certificate it signs with."""

    signer: signers.SimpleSigner
    certificate: asn1_x509.Certificate

    @property
    def subject(self) -> str:
        """The certificate's subject, for logs and certificate pages."""
        return str(self.certificate.subject.human_friendly)


def load_identity(settings: Settings) -> SigningIdentity:
    """The configured signing identity.

    Raises:
        errors.SettingsError: In production, no certificate is configured or it
            cannot be read or opened (naming the variable, never the secret).
    """
    data, source = _pkcs12_bytes(settings)
    passphrase = (
        settings.signing_passphrase.get_secret_value().encode() if settings.signing_passphrase else None
    )
    return identity_from_pkcs12(data, passphrase, source=source)


def identity_from_pkcs12(data: bytes, passphrase: bytes | None, *, source: str) -> SigningIdentity:
    """Open a PKCS#12 bundle.

    Raises:
        errors.SettingsError: It is not PKCS#12, or the passphrase does not open it.
    """
    try:
        key, certificate, _ = pkcs12.load_key_and_certificates(data, passphrase)
    except (ValueError, TypeError) as exc:
        raise errors.SettingsError(
            f"{source}: cannot open the PKCS#12 certificate "
            "(wrong NEXT_PRIVATE_SIGNING_PASSPHRASE, or not a .p12 file)"
        ) from exc
    # pyHanko assumes both are there: without one it fails with an AttributeError.
    if key is None or certificate is None:
        raise errors.SettingsError(f"{source}: the PKCS#12 file holds no certificate with a private key")
    signer = signers.SimpleSigner.load_pkcs12_data(data, other_certs=[], passphrase=passphrase)
    if signer is None or signer.signing_cert is None:
        raise errors.SettingsError(f"{source}: the PKCS#12 file holds no certificate with a private key")
    return SigningIdentity(signer=signer, certificate=signer.signing_cert)


def _pkcs12_bytes(settings: Settings) -> tuple[bytes, str]:
    if settings.signing_file_contents is not None:
        try:
            return base64.b64decode(settings.signing_file_contents.get_secret_value(), validate=True), (
                "NEXT_PRIVATE_SIGNING_LOCAL_FILE_CONTENTS"
            )
        except (binascii.Error, ValueError) as exc:
            raise errors.SettingsError("NEXT_PRIVATE_SIGNING_LOCAL_FILE_CONTENTS: not valid base64") from exc
    if settings.signing_file_path is not None:
        try:
            return settings.signing_file_path.read_bytes(), "NEXT_PRIVATE_SIGNING_LOCAL_FILE_PATH"
        except OSError as exc:
            raise errors.SettingsError(
                f"NEXT_PRIVATE_SIGNING_LOCAL_FILE_PATH: cannot read {settings.signing_file_path}: "
                f"{exc.strerror}"
            ) from exc
    if not settings.is_development:
        raise errors.SettingsError(
            "NEXT_PRIVATE_SIGNING_LOCAL_FILE_PATH or NEXT_PRIVATE_SIGNING_LOCAL_FILE_CONTENTS is required in "
            "production: documents cannot be sealed without a signing certificate"
        )
    path = Path(settings.data_dir) / DEV_CERTIFICATE_FILE
    if not path.exists():
        write_development_certificate(path)
    return path.read_bytes(), str(path)


def write_development_certificate(path: Path) -> None:
    """Write a self-signed certificate without passphrase (mode 0600), unless one is there."""
    path.parent.mkdir(parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=DEV_KEY_BITS)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, DEV_CERTIFICATE_NAME)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=365 * DEV_CERTIFICATE_YEARS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )  # fmt: skip
        .sign(key, hashes.SHA256())
    )
    bundle = pkcs12.serialize_key_and_certificates(
        DEV_CERTIFICATE_NAME.encode(), key, certificate, None, serialization.NoEncryption()
    )
    # Written aside, then linked into place: a process starting at the same time
    # either sees no file or a whole one, and the first certificate made wins.
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(bundle)
    try:
        os.link(partial, path)
    except FileExistsError:
        pass
    finally:
        partial.unlink()
