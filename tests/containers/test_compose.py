"""The container stack as users run it: the real Dockerfile and docker-compose.yml, started with podman.

``make compose-test`` runs this module. It builds the images (the base and the service
images are cached, the project image comes from the repository each time), brings the stack
up with a generated signing certificate, waits until every container's own health check
passes, signs a document end to end (the stack's worker container seals it), reads the sealed
PDF back and checks its signature, and always tears the stack down (``down -v``). The figures
it measures are printed at the end (docs/containers.md records them).
"""

from __future__ import annotations

import base64
import json
import secrets
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from docjobs_devkit.pdfs import sample_pdf
from docjobs_devkit.services import free_port

from docjobs.pdf.identity import identity_from_pkcs12
from docjobs.pdf.verify import verify
from tests.containers import stack

# Building images from cold takes minutes; each step below has its own deadline.
pytestmark = pytest.mark.timeout(1800)

SIGN_DEADLINE_SECONDS = 180.0
SIGN_SCRIPT = Path(__file__).resolve().parent / "sign_in_stack.py"


@pytest.fixture(scope="module")
def images() -> dict[str, float]:
    """Every image the stack needs, built here; the seconds each build step took."""
    stack.require_podman()
    return {
        "base image build (0 = cached)": stack.build_base_image(),
        "PostgreSQL and Redis images (0 = cached)": stack.build_service_images(),
        "project image build": stack.build_project_image(stack.pip_cert()),
    }


def stack_env(signing_certificate: bytes, port: int) -> dict[str, str]:
    """The test's .env: what a user writes (key, certificate), plus the override's images."""
    return {
        "NEXT_PRIVATE_ENCRYPTION_SECONDARY_KEY": secrets.token_urlsafe(32),
        "NEXT_PRIVATE_SIGNING_LOCAL_FILE_CONTENTS": base64.b64encode(signing_certificate).decode(),
        # Jobs run only in the worker container, so the seal below is the worker's.
        "NEXT_PRIVATE_JOBS_EMBEDDED_WORKER": "false",
        "DOCJOBS_WEB_BIND": "127.0.0.1",
        "DOCJOBS_WEB_PORT": str(port),
        "DOCJOBS_TEST_IMAGE": stack.PROJECT_IMAGE,
        "DOCJOBS_TEST_POSTGRES_IMAGE": stack.POSTGRES_IMAGE,
        "DOCJOBS_TEST_REDIS_IMAGE": stack.REDIS_IMAGE,
    }


@pytest.fixture
def compose_stack(tmp_path: Path, signing_certificate: bytes) -> Iterator[stack.ComposeStack]:
    env = stack_env(signing_certificate, free_port())
    project = f"docjobs-test-{secrets.token_hex(4)}"
    secret_values = [
        env["NEXT_PRIVATE_ENCRYPTION_SECONDARY_KEY"],
        env["NEXT_PRIVATE_SIGNING_LOCAL_FILE_CONTENTS"],
    ]
    compose_stack = stack.ComposeStack(tmp_path / "stack", project, env, secret_values)
    compose_stack.write()
    try:
        yield compose_stack
    finally:
        compose_stack.down()
        assert compose_stack.containers() == {}, "down -v left containers behind"


def test_compose_stack_starts_healthy_and_seals_a_document(
    images: dict[str, float],
    compose_stack: stack.ComposeStack,
    signing_certificate: bytes,
    capsys: pytest.CaptureFixture[str],
) -> None:
    copied = (compose_stack.directory / "docker-compose.yml").read_bytes()
    assert copied == (stack.REPO_ROOT / "docker-compose.yml").read_bytes()

    started = time.monotonic()
    compose_stack.up()
    assert set(compose_stack.containers()) == set(stack.SERVICES)
    healthy_seconds = compose_stack.wait_healthy()
    up_to_healthy = time.monotonic() - started

    # Published on loopback only, and answering there.
    port = compose_stack.env["DOCJOBS_WEB_PORT"]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as response:
        assert response.status == 200
        assert json.loads(response.read())["status"] == "ok"

    signing_started = time.monotonic()
    document = sample_pdf(2, title="Compose lease")
    output = compose_stack.exec(
        "web", "python", "-c", SIGN_SCRIPT.read_text(), stdin=document, timeout=SIGN_DEADLINE_SECONDS
    )
    end_to_end = time.monotonic() - signing_started
    result = json.loads(output.decode().strip().splitlines()[-1])
    assert result["status"] == "COMPLETED"
    sealed = base64.b64decode(result["pdf"])
    assert sealed.startswith(b"%PDF-") and b"/ByteRange" in sealed
    certificate = identity_from_pkcs12(signing_certificate, None, source="the test certificate").certificate
    verification = verify(sealed, [certificate])
    assert verification.ok, verification

    # The containers' own checks, as the engine records them, and their one line.
    for service in ("web", "worker", "scheduler"):
        assert compose_stack.health_status(service) == "healthy", service
    worker_line = compose_stack.exec("worker", "docjobs", "health", timeout=60).decode().strip()
    assert worker_line.startswith("worker: 2 process(es) on "), worker_line
    scheduler_line = compose_stack.exec("scheduler", "docjobs", "health", timeout=60).decode().strip()
    assert scheduler_line.startswith("scheduler: "), scheduler_line
    # The migrate container ran once and ended well.
    migrate = compose_stack.containers()["migrate"]
    state = stack.run(["podman", "inspect", "--format", "{{.State.ExitCode}}", migrate], timeout=60)
    assert state.stdout.decode().strip() == "0"

    figures = {
        **images,
        "up to healthy (s)": up_to_healthy,
        "of which waiting for health checks (s)": healthy_seconds,
        "seal end to end, from the first signature (s)": result["sealSeconds"],
        "podman exec of the signing script (s)": end_to_end,
    }
    with capsys.disabled():
        print(
            "\ncompose-test figures: " + "; ".join(f"{name}: {value:.1f}" for name, value in figures.items())
        )


def test_compose_names_the_missing_certificate(tmp_path: Path) -> None:
    env = stack_env(b"unused", free_port())
    del env["NEXT_PRIVATE_SIGNING_LOCAL_FILE_CONTENTS"]
    compose_stack = stack.ComposeStack(tmp_path / "stack", f"docjobs-test-{secrets.token_hex(4)}", env)
    compose_stack.write()
    try:
        result = compose_stack.compose("up", "-d", "--no-build", check=False)
        assert result.returncode != 0
        assert b"set NEXT_PRIVATE_SIGNING_LOCAL_FILE_CONTENTS in .env" in result.stderr
        assert compose_stack.containers() == {}
    finally:
        compose_stack.down()
