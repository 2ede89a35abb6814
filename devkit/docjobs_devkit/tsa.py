"""An RFC 3161 time-stamping authority over HTTP, for tests: pyHanko's test stamper behind Starlette."""

from __future__ import annotations

import datetime

from asn1crypto import keys, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


def tsa_certificate() -> tuple[asn1_x509.Certificate, keys.PrivateKeyInfo]:
    """A self-signed certificate for time-stamping (extended key usage timeStamping, critical)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "docjobs test TSA")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
        .sign(key, hashes.SHA256())
    )
    der_key = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return (
        asn1_x509.Certificate.load(certificate.public_bytes(serialization.Encoding.DER)),
        keys.PrivateKeyInfo.load(der_key),
    )


def tsa_app(certificate: asn1_x509.Certificate, key: keys.PrivateKeyInfo) -> Starlette:
    """``POST /`` answers a TimeStampReq with a TimeStampResp; ``app.state.requests`` counts them."""
    stamper = DummyTimeStamper(tsa_cert=certificate, tsa_key=key)

    async def stamp(request: Request) -> Response:
        app.state.requests += 1
        answer = stamper.request_tsa_response(tsp.TimeStampReq.load(await request.body()))
        return Response(answer.dump(), media_type="application/timestamp-reply")

    app = Starlette(routes=[Route("/", stamp, methods=["POST"])])
    app.state.requests = 0
    return app
