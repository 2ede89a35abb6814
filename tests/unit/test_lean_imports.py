"""A worker process carries only what its jobs need until they run (issue 21, worker memory).

Each test runs a fresh interpreter, as ``docjobs worker`` starts one: it imports the
runtime and docjobs' actors and builds the provider's broker from settings (without
starting a worker), then lists which heavy libraries were loaded. The PDF, mail,
webhook and web libraries were most of a no-op worker's 90 MiB; they load when the
first job that needs them runs, which the rest of each probe checks. The web app's
probe builds ``docjobs web``'s app the same way: the board and its libraries load
with the board's first request, argon2 with the first sign-in.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: Libraries a worker running no-op jobs must not import: the PDF stack, mail templates and
#: address checks, the webhook client, the Inngest SDK, password hashing and the web app's.
HEAVY_MODULES = (
    "pyhanko",
    "pikepdf",
    "reportlab",
    "fontTools",
    "PIL",
    # The bindings: redis-py imports the bare package (a few KiB) to learn whether it is there.
    "cryptography.hazmat.bindings._rust",
    "asn1crypto",
    "jinja2",
    "email_validator",
    "httpx",
    "inngest",
    "argon2",
    "starlette",
    "uvicorn",
)

_PROBE = """
import json, sys
from docjobs import runtime
import docjobs.actors  # declares every docjobs job, as a worker does
from docjobs.settings import Settings

heavy = sys.argv[1:]
def loaded():
    return sorted(name for name in heavy if name in sys.modules)

current = runtime.install(runtime.build(Settings.from_environ(json.loads(sys.stdin.read()))))
try:
    at_start = loaded()
    # A worker's boot: in production it checks the signing certificate opens.
    from docjobs.certificate_check import CertificateCheck

    class Booting:
        consumer_whitelist = None

    try:
        for middleware in current.broker.middleware:
            if isinstance(middleware, CertificateCheck):
                middleware.before_worker_boot(current.broker, Booting())
    except Exception as exc:
        print(json.dumps({"boot_refused": f"{type(exc).__name__}: {exc}", "after_boot": loaded()}))
        sys.exit()
    after_boot = loaded()
    # What the email jobs do first: check a payload's address and render the message.
    from docjobs.actors import emails
    from docjobs.mail import message
    emails.send_signup_confirmation_email.validate({"email": "someone@example.com"})
    message.render(
        message.Email("someone@example.com", "Someone", "Hello", "Hello", ("Hi.",)),
        from_name="docjobs", from_address="noreply@example.com",
    )
    after_email = loaded()
    # What the seal job does first: load the signing certificate.
    current.signing_identity()
    after_seal = loaded()
finally:
    runtime.reset()
print(json.dumps({
    "at_start": at_start, "after_boot": after_boot, "after_email": after_email, "after_seal": after_seal
}))
"""


def probe(environ: dict[str, str]) -> dict[str, Any]:
    """Run the probe in a fresh interpreter with ``environ`` as its settings."""
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *HEAVY_MODULES],
        input=json.dumps(environ), capture_output=True, text=True, timeout=60, cwd=ROOT, check=False,
    )  # fmt: skip
    assert 0 == done.returncode, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.fixture(params=["local", "bullmq"])
def provider_environ(request: pytest.FixtureRequest, environ: dict[str, str]) -> dict[str, str]:
    """The test's settings on each provider that runs its own workers."""
    if request.param == "bullmq":
        bullmq: dict[str, str] = request.getfixturevalue("bullmq_environ")
        return bullmq
    return environ


def test_a_worker_loads_no_heavy_library_until_a_job_needs_it(provider_environ: dict[str, str]) -> None:
    loaded = probe(provider_environ)
    assert loaded["at_start"] == []
    # The boot check of the production certificate loads it in a process of its own.
    assert loaded["after_boot"] == []


def test_a_worker_refuses_to_boot_on_a_bad_certificate_without_loading_the_pdf_libraries(
    environ: dict[str, str],
) -> None:
    bad = {**environ, "NEXT_PRIVATE_SIGNING_LOCAL_FILE_CONTENTS": base64.b64encode(b"not a p12").decode()}
    loaded = probe(bad)
    refusal = loaded.get("boot_refused", "")
    assert refusal.startswith("CertificateMissing: ") and "NEXT_PRIVATE_SIGNING_" in refusal, loaded
    assert "\n" not in refusal
    assert loaded["after_boot"] == []


def test_the_libraries_load_when_the_first_job_needing_them_runs(environ: dict[str, str]) -> None:
    loaded = probe(environ)
    assert {"jinja2", "email_validator"} <= set(loaded["after_email"])
    assert {"pyhanko", "cryptography.hazmat.bindings._rust"} <= set(loaded["after_seal"])


#: Libraries the web app must not load before a request needs them: the PDF stack (the
#: certificate check runs in a process of its own), the board's templates, metrics and
#: password hashing (its first request), the Inngest SDK (the inngest provider only).
WEB_HEAVY_MODULES = (
    "pyhanko",
    "pikepdf",
    "reportlab",
    "cryptography.hazmat.bindings._rust",
    "asn1crypto",
    "jinja2",
    "prometheus_client",
    "argon2",
    "email_validator",
    "inngest",
    "httpx",
)

_WEB_PROBE = """
import json, re, sys
from docjobs import runtime
import docjobs.actors  # declares every docjobs job, as `docjobs web` does
from docjobs.settings import Settings
from docjobs.web.app import create_app

heavy = sys.argv[1:]
def loaded():
    return sorted(name for name in heavy if name in sys.modules)

checks = []
check_elsewhere = runtime._check_certificate_elsewhere
def counted(settings):
    checks.append(1)
    check_elsewhere(settings)
runtime._check_certificate_elsewhere = counted

current = runtime.install(runtime.build(Settings.from_environ(json.loads(sys.stdin.read()))))
try:
    try:
        app = create_app(current)  # with its embedded worker: it checks the certificate
    except Exception as exc:
        print(json.dumps({"refused": f"{type(exc).__name__}: {exc}", "at_build": loaded()}))
        sys.exit()
    # The embedded worker's boot checks again (its lifespan starts it).
    from docjobs.certificate_check import CertificateCheck

    class Booting:
        consumer_whitelist = None

    for middleware in current.broker.middleware:
        if isinstance(middleware, CertificateCheck):
            middleware.before_worker_boot(current.broker, Booting())
    at_build = loaded()
    from starlette.testclient import TestClient  # imports httpx, which is not counted from here

    client = TestClient(app)  # without its lifespan: no worker or scheduler starts
    health = client.get("/healthz").status_code
    form = client.get("/api/jobs/board/sign-in")
    after_board = loaded()
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)[1]
    wrong = {"csrf": csrf, "email": "nobody@example.com", "password": "not the password"}
    refused = client.post("/api/jobs/board/sign-in", data=wrong).status_code
    after_sign_in = loaded()
finally:
    runtime.reset()
print(json.dumps({
    "at_build": at_build, "health": health, "form": form.status_code, "after_board": after_board,
    "refused": refused, "after_sign_in": after_sign_in, "checks": len(checks),
}))
"""


def web_probe(environ: dict[str, str]) -> dict[str, Any]:
    """Build the web app in a fresh interpreter with ``environ`` as its settings, then use the board."""
    done = subprocess.run(
        [sys.executable, "-c", _WEB_PROBE, *WEB_HEAVY_MODULES],
        input=json.dumps(environ), capture_output=True, text=True, timeout=60, cwd=ROOT, check=False,
    )  # fmt: skip
    assert 0 == done.returncode, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_the_web_app_loads_the_board_and_its_libraries_when_the_board_is_first_asked_for(
    environ: dict[str, str],
) -> None:
    loaded = web_probe(environ)
    # Built in production with its embedded worker, booted: the certificate was checked
    # in a process of its own, once.
    assert loaded["at_build"] == [], loaded
    assert 1 == loaded["checks"]
    assert 200 == loaded["health"]
    assert 200 == loaded["form"]
    assert {"jinja2", "prometheus_client"} <= set(loaded["after_board"])
    assert "argon2" not in loaded["after_board"]
    # A wrong password is refused by argon2, loaded for that first sign-in.
    assert 401 == loaded["refused"]
    assert "argon2" in loaded["after_sign_in"]
    assert not {"pyhanko", "inngest"} & set(loaded["after_sign_in"])


def test_the_web_app_refuses_a_bad_certificate_without_loading_the_pdf_libraries(
    environ: dict[str, str],
) -> None:
    bad = {**environ, "NEXT_PRIVATE_SIGNING_LOCAL_FILE_CONTENTS": base64.b64encode(b"not a p12").decode()}
    loaded = web_probe(bad)
    refusal = loaded.get("refused", "")
    assert isinstance(refusal, str) and "NEXT_PRIVATE_SIGNING_" in refusal, loaded
    assert "\n" not in refusal
    assert loaded["at_build"] == []
