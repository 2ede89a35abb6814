"""What sealing refuses at once, naming the document and field, and the memory a bomb may cost it."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from decimal import Decimal
from io import BytesIO
from pathlib import Path
from typing import Any

import pikepdf
import pytest
from docjobs_devkit.pdfs import (
    deflate_bomb_pdf,
    deflated_repeat,
    password_protected_pdf,
    png_bomb,
    sample_pdf,
)
from PIL import Image

from docjobs import errors
from docjobs.pdf.identity import SigningIdentity, identity_from_pkcs12
from docjobs.pdf.refusal import DocumentRefused
from docjobs.pdf.seal import SealInput, SignatureSettings, seal_pdf

ROOT = Path(__file__).resolve().parents[2]
DOCUMENT = {"id": 73, "title": "Lease", "envelope_id": "envelope_abc"}
#: What sealing a bomb may add to the process's peak memory.
MAX_BOMB_GROWTH_MIB = 200


@pytest.fixture(scope="module")
def certificate(signing_certificate: bytes, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tests' signing certificate as a file, for the measuring subprocess."""
    path = tmp_path_factory.mktemp("cert") / "cert.p12"
    path.write_bytes(signing_certificate)
    return path


@pytest.fixture(scope="module")
def identity(signing_certificate: bytes) -> SigningIdentity:
    return identity_from_pkcs12(signing_certificate, None, source="test")


def field(fid: int = 1, kind: str = "NAME", **values: Any) -> dict[str, Any]:
    row = {"id": fid, "recipient_id": 1, "type": kind, "page": 1, "position_x": 10, "position_y": 20,
           "width": 30, "height": 4, "inserted": True, "custom_text": "Alice", "signature_image": None,
           "typed_signature": None, "field_meta": None}  # fmt: skip
    return {**row, **values}


def seal(original: bytes, fields: list[dict[str, Any]], identity: SigningIdentity) -> bytes:
    recipients = [{"id": 1, "name": "Alice", "email": "alice@example.com", "role": "SIGNER", "sent_at": None,
                   "rejection_reason": None}]  # fmt: skip
    source = SealInput(original, DOCUMENT, recipients, fields, audit_logs=[], rejected=False)
    return seal_pdf(source, identity, SignatureSettings(location="https://sign.example.com"))


def refusal(original: bytes, fields: list[dict[str, Any]], identity: SigningIdentity) -> str:
    """The reason sealing refuses with; it must be one line, and one the job is not retried for."""
    with pytest.raises(DocumentRefused) as refused:
        seal(original, fields, identity)
    assert isinstance(refused.value, errors.NON_RETRYABLE)  # the job fails at once
    reason = str(refused.value)
    assert 1 == len(reason.splitlines()) and reason.startswith("document envelope_abc: "), reason
    return reason


def test_a_pdf_behind_a_password_is_refused(identity: SigningIdentity) -> None:
    reason = refusal(password_protected_pdf(2), [], identity)
    assert "document envelope_abc: the PDF is protected by a password; upload it without one" == reason


def test_a_pdf_that_is_not_one_is_refused(identity: SigningIdentity) -> None:
    assert refusal(b"%PDF-1.7 not really", [], identity).startswith(
        "document envelope_abc: the PDF cannot be read ("
    )


def edited(change: Any) -> bytes:
    """A 2-page sample PDF after ``change(pdf)``."""
    with pikepdf.open(BytesIO(sample_pdf(2))) as pdf:
        change(pdf)
        output = BytesIO()
        pdf.save(output)
    return output.getvalue()


def _no_pages(pdf: pikepdf.Pdf) -> None:
    del pdf.pages[1]
    del pdf.pages[0]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (_no_pages, "the PDF has no pages"),
        (lambda pdf: setattr(pdf.pages[1].obj, "MediaBox", pikepdf.Array([0, 0, 0, 0])),
         "page 2 has an empty page box"),
        (lambda pdf: setattr(pdf.pages[1].obj, "Rotate", pikepdf.Name.Left),
         "page 2 has a /Rotate that is not a whole number"),
        (lambda pdf: setattr(pdf.pages[1].obj, "MediaBox", pikepdf.Array([0, 0, 30, 30])),
         "the certificate pages cannot be laid out at the last page's size"),
    ],
    ids=["no-pages", "empty-box", "rotate-name", "tiny-last-page"],
)  # fmt: skip
def test_a_pdf_whose_pages_cannot_carry_the_seal_is_refused(
    identity: SigningIdentity, change: Any, reason: str
) -> None:
    assert f"document envelope_abc: {reason}" == refusal(edited(change), [], identity)


@pytest.mark.parametrize("page", [0, -1, 3, 4])
def test_a_field_on_no_page_of_the_pdf_is_refused(identity: SigningIdentity, page: int) -> None:
    reason = refusal(sample_pdf(2), [field(7, page=page)], identity)
    assert f"document envelope_abc: field 7 is on page {page}; the PDF has pages 1 to 2" == reason


@pytest.mark.parametrize(
    ("name", "value"),
    [("position_x", float("nan")), ("position_y", float("inf")), ("position_x", Decimal("NaN")),
     ("width", -1), ("height", 100.5), ("position_y", None), ("width", "wide")],
)  # fmt: skip
def test_a_field_whose_position_or_size_is_no_percentage_is_refused(
    identity: SigningIdentity, name: str, value: Any
) -> None:
    reason = refusal(sample_pdf(1), [field(7, **{name: value})], identity)
    assert f"document envelope_abc: field 7: {name} is {value}, not a percentage from 0 to 100" == reason


def test_only_inserted_fields_are_checked(identity: SigningIdentity) -> None:
    sealed = seal(sample_pdf(1), [field(7, page=0, position_x=float("nan"), inserted=False)], identity)
    assert sealed.startswith(b"%PDF")


def test_choices_that_are_not_a_list_are_refused(identity: SigningIdentity) -> None:
    fields = [field(7, "CHECKBOX", custom_text='["Yes"]', field_meta={"values": "Yes,No"})]
    assert "document envelope_abc: field 7: field_meta.values is not a list of options" == refusal(
        sample_pdf(1), fields, identity
    )


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        (b"not an image", "the signature image is not a PNG, JPEG, GIF, WEBP image"),
        (
            b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n",
            "the signature image is not a PNG, JPEG, GIF",
        ),
        (png_bomb(60, 40)[:-40], "the signature image cannot be decoded ("),
    ],
    ids=["garbage", "postscript", "truncated-png"],
)
def test_a_signature_image_that_does_not_decode_is_refused(
    identity: SigningIdentity, image: bytes, expected: str
) -> None:
    reason = refusal(sample_pdf(1), [field(7, "SIGNATURE", signature_image=image)], identity)
    assert reason.startswith(f"document envelope_abc: field 7: {expected}"), reason


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        (png_bomb(8000, 8000), "has 8000 x 8000 pixels, more than 25000000"),
        (png_bomb(14000, 14000, mode="L"), "has more than 25000000 pixels"),  # Pillow's own limit, passed
    ],
    ids=["64-megapixels", "196-megapixels"],
)
def test_a_signature_image_with_too_many_pixels_is_refused(
    identity: SigningIdentity, image: bytes, expected: str
) -> None:
    reason = refusal(sample_pdf(1), [field(7, "SIGNATURE", signature_image=image)], identity)
    assert f"document envelope_abc: field 7: the signature image {expected}" == reason


@pytest.mark.parametrize(("kind", "mode"), [("PNG", "RGBA"), ("JPEG", "RGB"), ("GIF", "P"), ("WEBP", "RGB")])
def test_a_signature_image_in_each_format_opened_is_drawn_on_its_page_and_the_certificate(
    identity: SigningIdentity, kind: str, mode: str
) -> None:
    image = BytesIO()
    Image.new(mode, (600, 200)).save(image, format=kind)
    sealed = seal(sample_pdf(1), [field(7, "SIGNATURE", signature_image=image.getvalue())], identity)
    with pikepdf.open(BytesIO(sealed)) as pdf:
        assert [1, 1] == [len(pdf.pages[number].get_images()) for number in (0, 1)]


def test_a_large_signature_image_is_drawn_shrunk_to_what_a_page_shows(identity: SigningIdentity) -> None:
    sealed = seal(sample_pdf(1), [field(7, "SIGNATURE", signature_image=png_bomb(4960, 2000))], identity)
    with pikepdf.open(BytesIO(sealed)) as pdf:
        (drawn,) = pdf.pages[0].get_images().values()
        assert (2480, 1000) == (int(drawn.Width), int(drawn.Height))


def test_a_decompression_bomb_is_refused(identity: SigningIdentity) -> None:
    reason = refusal(deflate_bomb_pdf(1024 * 1024 * 1024), [field()], identity)
    assert "document envelope_abc: its streams inflate to more than 256 MiB (a decompression bomb?)" == reason


def test_streams_are_counted_through_their_filters_together() -> None:
    from docjobs.pdf import streams
    from docjobs.pdf.refusal import DocumentRefused

    megabyte = deflated_repeat(b" " * 1024 * 1024, 1)
    with pikepdf.open(BytesIO(sample_pdf(1))) as pdf:
        for filters, data in (
            ([pikepdf.Name.FlateDecode], megabyte),
            ([pikepdf.Name.FlateDecode, pikepdf.Name.FlateDecode], deflated_repeat(megabyte, 1)),
            (
                [pikepdf.Name.ASCII85Decode, pikepdf.Name.FlateDecode],
                b"<~" + base64.a85encode(megabyte) + b"~>",
            ),
        ):
            stream = pikepdf.Stream(pdf, data)
            stream.Filter = pikepdf.Array(filters)
            pdf.pages[0].obj.Contents = pikepdf.Array([pdf.pages[0].obj.Contents, stream])
        counted = streams.check_inflated_size(pdf, "document d", limit_bytes=4 * 1024 * 1024)
        assert 3 * 1024 * 1024 < counted < 4 * 1024 * 1024  # three megabytes of spaces, and the page's text
        with pytest.raises(DocumentRefused, match="^document d: its streams inflate to more than 3 MiB"):
            streams.check_inflated_size(pdf, "document d", limit_bytes=3 * 1024 * 1024)


def test_the_original_page_content_is_carried_over_without_being_decoded(identity: SigningIdentity) -> None:
    original = deflate_bomb_pdf(64 * 1024 * 1024)  # a page stream of 64 MiB, 64 kB compressed
    with pikepdf.open(BytesIO(original)) as pdf:
        compressed = pdf.pages[0].obj.Contents[-1].read_raw_bytes()
    sealed = seal(original, [field()], identity)
    with pikepdf.open(BytesIO(sealed)) as pdf:
        carried = [stream.read_raw_bytes() for stream in pdf.pages[0].obj.Contents]
    assert compressed in carried  # the same bytes: never inflated, never deflated again


def test_image_data_is_carried_over_neither_counted_nor_decoded(identity: SigningIdentity) -> None:
    side = 10_000  # 300 MB of RGB pixels: over the bound for streams, lawful for a scan
    with pikepdf.open(BytesIO(sample_pdf(1))) as pdf:
        compressed = deflated_repeat(b"\x00" * side * 3 * 10, side // 10)
        scan = pikepdf.Stream(pdf, compressed, Type=pikepdf.Name.XObject, Subtype=pikepdf.Name.Image,
                              Width=side, Height=side, ColorSpace=pikepdf.Name.DeviceRGB, BitsPerComponent=8,
                              Filter=pikepdf.Name.FlateDecode)  # fmt: skip
        pdf.pages[0].add_resource(scan, pikepdf.Name.XObject, pikepdf.Name("/Scan"))
        pdf.pages[0].contents_add(b"q 595 0 0 842 0 0 cm /Scan Do Q")
        original = BytesIO()
        pdf.save(original)
    sealed = seal(original.getvalue(), [field()], identity)
    with pikepdf.open(BytesIO(sealed)) as pdf:
        (carried,) = pdf.pages[0].get_images().values()
        assert compressed == carried.read_raw_bytes()


# Run in a child process, so that the peak memory measured is sealing's alone.
_MEASURE = """
import json, sys
from pathlib import Path
from docjobs.pdf.identity import identity_from_pkcs12
from docjobs_devkit.pdfs import deflate_bomb_pdf, png_bomb, sample_pdf
from tests.unit.test_sealing_refusals import field as name_field, seal as seal_with

identity = identity_from_pkcs12(Path(sys.argv[2]).read_bytes(), None, source="test")
def field(**values):
    return name_field(7, "SIGNATURE", custom_text=None, typed_signature="Alice", **values)
def seal(original, fields):
    return seal_with(original, fields, identity)
original, fields = {
    "deflate-bomb": lambda: (deflate_bomb_pdf(1024 ** 3), [field()]),
    "pixel-bomb": lambda: (sample_pdf(1), [field(signature_image=png_bomb(8000, 8000))]),
    "large-content": lambda: (deflate_bomb_pdf(192 * 1024 ** 2), [field()]),
}[sys.argv[1]]()
def peak_kib():  # this process's own peak (getrusage's would start at the parent's)
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
seal(sample_pdf(1), [field(signature_image=png_bomb(60, 20))])  # fonts, imports: before the baseline
before = peak_kib()
try:
    outcome = {"sealed": len(seal(original, fields)) > 0}
except Exception as exc:
    outcome = {"refused": f"{type(exc).__name__}: {exc}"}
print(json.dumps({"growth_mib": round((peak_kib() - before) / 1024), **outcome}))
"""


def peak_growth(kind: str, certificate: Path) -> dict[str, Any]:
    """Seal ``kind`` in a fresh process: its refusal or success, and how far its peak memory grew."""
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, kind, str(certificate)],
        capture_output=True, text=True, timeout=120, cwd=ROOT, check=False,
    )  # fmt: skip
    assert 0 == done.returncode, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("deflate-bomb", "its streams inflate to more than 256 MiB"),
        ("pixel-bomb", "field 7: the signature image has 8000 x 8000 pixels"),
    ],
)
def test_a_bomb_is_refused_in_bounded_memory(certificate: Path, kind: str, reason: str) -> None:
    measured = peak_growth(kind, certificate)
    assert measured.get("refused", "").startswith(f"DocumentRefused: document envelope_abc: {reason}"), (
        measured
    )
    assert measured["growth_mib"] < MAX_BOMB_GROWTH_MIB, measured


def test_content_just_under_the_bound_is_sealed_without_being_held_in_memory(certificate: Path) -> None:
    measured = peak_growth("large-content", certificate)
    assert measured.get("sealed"), measured
    assert measured["growth_mib"] < MAX_BOMB_GROWTH_MIB, measured
