"""The sealing pipeline on real PDFs: what is drawn where, what is appended, and a signature that verifies."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path
from typing import Any

import pikepdf
import pypdf
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12
from docjobs_devkit.pdfs import sample_pdf
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext
from reportlab.lib.pagesizes import A4, landscape

from docjobs.errors import SettingsError
from docjobs.pdf.identity import (
    SigningIdentity,
    identity_from_pkcs12,
    load_identity,
    write_development_certificate,
)
from docjobs.pdf.seal import SealInput, SignatureSettings, seal_pdf
from docjobs.settings import Settings

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
SETTINGS = SignatureSettings(location="https://sign.example.com")
# A 2x1 red PNG: a drawn signature.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAIAAAABCAIAAAB7QOjdAAAAEElEQVR4nGP4z8DAwMDAAAAGAgH/eYQMUgAAAABJRU5ErkJggg=="
)


@pytest.fixture(scope="module")
def identity(tmp_path_factory: pytest.TempPathFactory) -> SigningIdentity:
    path = tmp_path_factory.mktemp("cert") / "cert.p12"
    write_development_certificate(path)
    return identity_from_pkcs12(path.read_bytes(), None, source="test")


def recipient(rid: int, name: str, role: str = "SIGNER", **extra: Any) -> dict[str, Any]:
    return {"id": rid, "name": name, "email": f"{name.lower()}@example.com", "role": role, "sent_at": NOW,
            "rejection_reason": None, **extra}  # fmt: skip


def field(fid: int, kind: str, page: int = 1, x: float = 10, y: float = 20, **values: Any) -> dict[str, Any]:
    return {"id": fid, "recipient_id": values.pop("recipient_id", 1), "type": kind, "page": page, "position_x": x,
            "position_y": y, "width": 30, "height": 4, "inserted": values.pop("inserted", True),
            "custom_text": values.pop("custom_text", None), "signature_image": values.pop("signature_image", None),
            "typed_signature": values.pop("typed_signature", None), "field_meta": values.pop("field_meta", None)}  # fmt: skip


def audit(kind: str, recipient_id: int, **extra: Any) -> dict[str, Any]:
    return {"type": kind, "data": {"recipientId": recipient_id}, "created_at": NOW, "user_id": None,
            "email": None, "name": None, "ip_address": "203.0.113.7", "user_agent": "pytest-agent", **extra}  # fmt: skip


DOCUMENT = {"title": "Lease", "envelope_id": "envelope_abc"}


def seal(original: bytes, fields: list[dict[str, Any]], identity: SigningIdentity, **options: Any) -> bytes:
    source = SealInput(
        original=original,
        document=DOCUMENT,
        recipients=options.pop("recipients", [recipient(1, "Alice"), recipient(2, "Carol", role="CC")]),
        fields=fields,
        audit_logs=options.pop(
            "audit_logs", [audit("DOCUMENT_OPENED", 1), audit("DOCUMENT_RECIPIENT_COMPLETED", 1)]
        ),
        rejected=options.pop("rejected", False),
    )
    return seal_pdf(source, identity, options.pop("settings", SETTINGS))


def texts(pdf: bytes) -> list[str]:
    return [page.extract_text() for page in pypdf.PdfReader(BytesIO(pdf)).pages]


def positions(pdf: bytes, page: int) -> Iterator[tuple[str, float, float]]:
    """Text fragments of a page with their (x, y) in page space."""
    found: list[tuple[str, float, float]] = []

    def visit(text: str, cm: Any, tm: Any, font: Any, size: Any) -> None:
        if text.strip():
            found.append((text.strip(), tm[4] * cm[0] + cm[4], tm[5] * cm[3] + cm[5]))

    pypdf.PdfReader(BytesIO(pdf)).pages[page - 1].extract_text(visitor_text=visit)
    return iter(found)


def test_the_sealed_file_carries_a_pades_signature_over_the_whole_file(identity: SigningIdentity) -> None:
    sealed = seal(sample_pdf(2), [field(1, "SIGNATURE", typed_signature="Alice")], identity)
    signature = PdfFileReader(BytesIO(sealed)).embedded_signatures[0]
    status = validate_pdf_signature(signature, ValidationContext(trust_roots=[identity.certificate]))
    assert status.bottom_line and status.intact and status.valid
    assert "ENTIRE_FILE" == status.coverage.name
    assert "/ETSI.CAdES.detached" == signature.sig_object["/SubFilter"]
    assert "Signed by Documenso" == signature.sig_object["/Reason"]
    assert "https://sign.example.com" == signature.sig_object["/Location"]


def test_a_changed_byte_breaks_the_signature(identity: SigningIdentity) -> None:
    sealed = bytearray(seal(sample_pdf(1), [], identity))
    at = sealed.index(b"Page 1 of 1") if b"Page 1 of 1" in sealed else len(sealed) // 3
    sealed[at] ^= 0x01
    signature = PdfFileReader(BytesIO(bytes(sealed)), strict=False).embedded_signatures[0]
    status = validate_pdf_signature(signature, ValidationContext(trust_roots=[identity.certificate]))
    assert not status.intact


def test_the_legacy_subfilter_is_available(identity: SigningIdentity) -> None:
    legacy = SignatureSettings(location="x", legacy_subfilter=True)
    sealed = seal(sample_pdf(1), [], identity, settings=legacy)
    assert (
        "/adbe.pkcs7.detached"
        == PdfFileReader(BytesIO(sealed)).embedded_signatures[0].sig_object["/SubFilter"]
    )


def test_every_field_type_is_drawn_inside_its_box(identity: SigningIdentity) -> None:
    choices = {"values": [{"value": "Yes"}, {"value": "No"}]}
    fields = [
        field(1, "SIGNATURE", y=10, typed_signature="A. Adams"),
        field(2, "INITIALS", y=16, custom_text="AA"),
        field(3, "NAME", y=22, custom_text="Alice Adams"),
        field(4, "EMAIL", y=28, custom_text="alice@example.com"),
        field(5, "DATE", y=34, custom_text="2026-11-28"),
        field(6, "TEXT", y=40, custom_text="Flat 4B"),
        field(7, "NUMBER", y=46, custom_text="1250"),
        field(8, "DROPDOWN", y=52, custom_text="Monthly"),
        field(9, "CHECKBOX", y=58, custom_text='["Yes"]', field_meta=choices),
        field(10, "RADIO", y=66, custom_text="No", field_meta=choices),
        field(11, "TEXT", y=74, custom_text="never filled", inserted=False),
    ]
    sealed = seal(sample_pdf(1, size=A4), fields, identity)
    width, height = A4
    drawn = {text: (x, y) for text, x, y in positions(sealed, 1)}
    for f in fields[:8]:
        value = f["typed_signature"] or f["custom_text"]
        x, y = drawn[value]
        left, top = f["position_x"] / 100 * width, height - f["position_y"] / 100 * height
        assert left <= x <= left + 0.3 * width, value
        assert top - 0.04 * height <= y <= top, value
    assert {"Yes", "No"} <= set(drawn)
    assert "never filled" not in drawn


def test_a_drawn_signature_is_embedded_as_an_image(identity: SigningIdentity) -> None:
    sealed = seal(sample_pdf(1), [field(1, "SIGNATURE", signature_image=PNG)], identity)
    with pikepdf.open(BytesIO(sealed)) as pdf:
        assert 1 == len(pdf.pages[0].get_images())


def test_fields_on_rotated_pages_land_where_the_signer_saw_them(identity: SigningIdentity) -> None:
    original = sample_pdf(3, rotations=[0, 90, 270])
    fields = [field(1, "NAME", page=2, x=5, y=5, custom_text="Top left on 90"),
              field(2, "NAME", page=3, x=60, y=90, custom_text="Bottom right on 270")]  # fmt: skip
    sealed = seal(original, fields, identity)
    with pikepdf.open(BytesIO(sealed)) as pdf:
        assert all(0 == int(page.obj.get("/Rotate", 0)) for page in pdf.pages)
        displayed = [(float(p.mediabox[2]) - float(p.mediabox[0]), float(p.mediabox[3]) - float(p.mediabox[1]))
                     for p in pdf.pages[:3]]  # fmt: skip
    assert displayed[1] == pytest.approx((A4[1], A4[0]), abs=0.01)  # the 90-degree page is shown landscape
    ((_, x, y),) = [p for p in positions(sealed, 2) if p[0] == "Top left on 90"]
    assert x < 0.2 * A4[1] and y > 0.8 * A4[0]
    ((_, x, y),) = [p for p in positions(sealed, 3) if p[0] == "Bottom right on 270"]
    assert x > 0.5 * A4[1] and y < 0.2 * A4[0]


def test_certificate_and_audit_pages_are_appended_at_the_last_page_size(identity: SigningIdentity) -> None:
    original = sample_pdf(2, size=landscape(A4))
    sealed = seal(original, [field(1, "SIGNATURE", typed_signature="Alice Adams")], identity)
    pages = texts(sealed)
    assert 4 == len(pages)
    certificate, audit_page = pages[2], pages[3]
    assert "Signing Certificate" in certificate
    for expected in ("Alice", "alice@example.com", "Signer", "Carol", "carol@example.com", "Role: CC", "Alice Adams",
                     "Sent: 2026-11-28 12:00:00 UTC", "Signed: 2026-11-28 12:00:00 UTC", "203.0.113.7",
                     "pytest-agent"):  # fmt: skip
        assert expected in certificate, expected
    assert "Audit Log" in audit_page
    assert "Alice <alice@example.com> opened the document." in audit_page
    assert "Alice <alice@example.com> signed the document." in audit_page
    with pikepdf.open(BytesIO(sealed)) as pdf:
        sizes = {(round(float(p.mediabox[2])), round(float(p.mediabox[3]))) for p in pdf.pages}
    assert {(round(landscape(A4)[0]), round(landscape(A4)[1]))} == sizes


def test_a_long_audit_log_flows_onto_more_pages(identity: SigningIdentity) -> None:
    entries = [audit("EMAIL_SENT", 1) for _ in range(120)]
    pages = texts(seal(sample_pdf(1), [], identity, audit_logs=entries))
    assert len(pages) >= 4
    assert sum(page.count("An email was sent to Alice <alice@example.com>.") for page in pages) == 120


def test_a_rejected_document_is_stamped_on_every_page(identity: SigningIdentity) -> None:
    rejected = texts(seal(sample_pdf(3), [], identity, rejected=True))
    completed = texts(seal(sample_pdf(3), [], identity))
    assert all("DOCUMENT REJECTED" in page for page in rejected[:3])
    assert not any("DOCUMENT REJECTED" in page for page in completed)


def test_forms_and_annotations_are_flattened(identity: SigningIdentity) -> None:
    sealed = seal(sample_pdf(1, with_form_field=True), [], identity)
    with pikepdf.open(BytesIO(sealed)) as pdf:
        fields = [f.get("/T") for f in pdf.Root.AcroForm.Fields]
        widgets = [a for page in pdf.pages for a in page.obj.get("/Annots", [])]
    assert ["Signature1"] == [str(name) for name in fields]  # only the seal's own signature field
    assert 1 == len(widgets)
    assert "filled in a form" in texts(sealed)[0]


def test_sealing_twice_gives_the_same_content(identity: SigningIdentity) -> None:
    original = sample_pdf(2)
    fields = [field(1, "NAME", custom_text="Alice Adams")]
    assert texts(seal(original, fields, identity)) == texts(seal(original, fields, identity))


def settings(**env: str) -> Settings:
    return Settings.from_environ(
        {
            "NEXT_PRIVATE_DATABASE_URL": "postgresql://u@h/d",
            "NEXT_PRIVATE_ENCRYPTION_SECONDARY_KEY": "k",
            **env,
        }
    )


def test_production_without_a_certificate_is_a_settings_error() -> None:
    with pytest.raises(
        SettingsError,
        match="^NEXT_PRIVATE_SIGNING_LOCAL_FILE_PATH or NEXT_PRIVATE_SIGNING_LOCAL_FILE_CONTENTS is required in production",
    ):
        load_identity(settings())


def test_an_unreadable_or_wrong_certificate_is_a_settings_error_without_the_secret(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="^NEXT_PRIVATE_SIGNING_LOCAL_FILE_PATH: cannot read"):
        load_identity(settings(NEXT_PRIVATE_SIGNING_LOCAL_FILE_PATH=str(tmp_path / "missing.p12")))
    with pytest.raises(SettingsError, match="^NEXT_PRIVATE_SIGNING_LOCAL_FILE_CONTENTS: not valid base64"):
        load_identity(settings(NEXT_PRIVATE_SIGNING_LOCAL_FILE_CONTENTS="%%%"))
    path = tmp_path / "cert.p12"
    write_development_certificate(path)
    contents = base64.b64encode(path.read_bytes()).decode()
    with pytest.raises(SettingsError, match="cannot open the PKCS#12 certificate") as raised:
        load_identity(
            settings(
                NEXT_PRIVATE_SIGNING_LOCAL_FILE_CONTENTS=contents, NEXT_PRIVATE_SIGNING_PASSPHRASE="hunter2"
            )
        )
    assert "hunter2" not in str(raised.value)
    assert load_identity(settings(NEXT_PRIVATE_SIGNING_LOCAL_FILE_CONTENTS=contents)).certificate is not None


@pytest.mark.parametrize("missing", ["private key", "certificate"])
def test_a_bundle_without_its_key_or_certificate_is_refused_naming_the_setting(
    tmp_path: Path, missing: str
) -> None:
    # A `openssl pkcs12 -export -nokeys` bundle failed inside pyHanko with an AttributeError.
    path = tmp_path / "cert.p12"
    write_development_certificate(path)
    key, certificate, _ = pkcs12.load_key_and_certificates(path.read_bytes(), None)
    partial = pkcs12.serialize_key_and_certificates(
        name=b"partial",
        key=None if missing == "private key" else key,  # type: ignore[arg-type]
        cert=None if missing == "certificate" else certificate,
        cas=None,
        encryption_algorithm=serialization.NoEncryption(),
    )
    (tmp_path / "partial.p12").write_bytes(partial)
    with pytest.raises(SettingsError) as raised:
        load_identity(settings(NEXT_PRIVATE_SIGNING_LOCAL_FILE_PATH=str(tmp_path / "partial.p12")))
    assert (
        "NEXT_PRIVATE_SIGNING_LOCAL_FILE_PATH: the PKCS#12 file holds no certificate with a private key"
        == str(raised.value)
    )


def test_development_generates_one_certificate_and_keeps_it(tmp_path: Path) -> None:
    dev = Settings.from_environ({"NEXT_PRIVATE_DATABASE_URL": "postgresql://u@h/d", "NODE_ENV": "development",
                                 "NEXT_PRIVATE_JOBS_DATA_DIR": str(tmp_path)})  # fmt: skip
    first, second = load_identity(dev), load_identity(dev)
    assert first.certificate.dump() == second.certificate.dump()
    assert "docjobs development signing certificate" in first.subject
    assert 0o600 == (tmp_path / "signing-certificate.p12").stat().st_mode & 0o777


def test_a_timestamp_authority_stamps_the_signature(identity: SigningIdentity) -> None:
    from docjobs_devkit.http import serve
    from docjobs_devkit.tsa import tsa_app, tsa_certificate

    tsa_cert, tsa_key = tsa_certificate()
    app = tsa_app(tsa_cert, tsa_key)
    with serve(app) as url:
        stamped = SignatureSettings(location="x", timestamp_authorities=[url + "/"])
        sealed = seal(sample_pdf(1), [], identity, settings=stamped)
    assert app.state.requests >= 1  # pyHanko also asks once to size the signature
    signature = PdfFileReader(BytesIO(sealed)).embedded_signatures[0]
    context = ValidationContext(trust_roots=[identity.certificate, tsa_cert])
    status = validate_pdf_signature(signature, context)
    assert status.bottom_line
    assert status.timestamp_validity is not None and status.timestamp_validity.valid


def test_a_50_page_file_gets_every_field_on_its_page(identity: SigningIdentity) -> None:
    kinds = ["NAME", "EMAIL", "DATE", "TEXT", "NUMBER", "DROPDOWN", "INITIALS"]
    fields = [
        field(i, kinds[i % len(kinds)], page=1 + i % 50, y=10 + (i // 50) * 40, custom_text=f"value-{i:03d}")
        for i in range(100)
    ]
    original = sample_pdf(50, rotations=[0, 90, 180, 270] * 12 + [0, 0])
    pages = texts(seal(original, fields, identity))
    assert 50 + 2 == len(pages)
    for f in fields:
        assert f["custom_text"] in pages[f["page"] - 1], f
        assert sum(f["custom_text"] in page for page in pages[:50]) == 1
