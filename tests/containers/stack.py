"""Build the images and drive the real docker-compose.yml with podman-compose, for the compose test.

Registry images cannot be pulled here, so the images come from this machine: a Debian base
made with debootstrap (containers/build-base-image.sh, cached), PostgreSQL and Redis built on
it (tests/containers/images, cached), and the project's image from the repository's
Dockerfile with that base (rebuilt each run; podman's layer cache keeps that quick). The stack
runs in a directory of its own holding a byte-for-byte copy of docker-compose.yml, the test's
override (containers/compose.test.yml: images only) and the test's .env.

podman 4.3 runs health checks from systemd timers, which this machine lacks, so
:meth:`ComposeStack.wait_healthy` runs each container's own check (``podman healthcheck run``)
until all pass or the deadline passes; ``podman inspect`` then shows the status they set.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
IMAGES_DIR = Path(__file__).resolve().parent / "images"
OVERRIDE_FILE = REPO_ROOT / "containers" / "compose.test.yml"

BASE_IMAGE = "localhost/docjobs-base:bookworm"
POSTGRES_IMAGE = "localhost/docjobs-test-postgres:15"
REDIS_IMAGE = "localhost/docjobs-test-redis:7"
PROJECT_IMAGE = "localhost/docjobs:compose-test"

#: A cold debootstrap took about 1 min 10 s here; the project image's dependencies about 1-2 min.
BUILD_DEADLINE_SECONDS = 900.0
#: podman-compose up/down of six containers.
COMPOSE_DEADLINE_SECONDS = 180.0
#: From `up` to every container healthy.
HEALTHY_DEADLINE_SECONDS = 240.0
HEALTH_POLL_SECONDS = 1.0
SERVICES = ("postgres", "redis", "migrate", "web", "worker", "scheduler")
LONG_RUNNING = ("postgres", "redis", "web", "worker", "scheduler")


class StackError(AssertionError):
    """A podman step failed; the message carries its (redacted) output."""


def run(
    command: Sequence[str],
    *,
    timeout: float,
    cwd: Path | None = None,
    stdin: bytes | None = None,
    secrets: Iterable[str] = (),
    check: bool = True,
) -> subprocess.CompletedProcess[bytes]:
    """Run ``command``; on failure raise with the tail of its output, ``secrets`` blanked out."""
    result = subprocess.run(
        list(command), cwd=cwd, input=stdin, capture_output=True, timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        output = (result.stdout + result.stderr).decode(errors="replace")
        raise StackError(
            f"{' '.join(command[:4])} exited {result.returncode}:\n{redact(output, secrets)[-3000:]}"
        )
    return result


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret replaced (podman-compose prints the containers' environment)."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "<redacted>")
    return text


def require_podman() -> None:
    """Fail (never skip) with what to do when the container engine is missing."""
    for tool in ("podman", "podman-compose"):
        if shutil.which(tool) is None:
            raise StackError(f"{tool} is not installed: run containers/setup-podman.sh (as root)")
    info = run(["podman", "info", "--format", "{{.Host.OCIRuntime.Name}}"], timeout=60, check=False)
    if info.returncode != 0:
        raise StackError(f"podman does not run: {info.stderr.decode(errors='replace').strip()[-500:]}")


def image_exists(image: str) -> bool:
    return run(["podman", "image", "exists", image], timeout=60, check=False).returncode == 0


def build_base_image() -> float:
    """The local Debian base (cached); returns the seconds it took (0 when cached)."""
    started = time.monotonic()
    if image_exists(BASE_IMAGE):
        return 0.0
    run([str(REPO_ROOT / "containers" / "build-base-image.sh"), BASE_IMAGE], timeout=BUILD_DEADLINE_SECONDS)
    return time.monotonic() - started


def build_service_images() -> float:
    """PostgreSQL 15 and Redis on the local base (cached); returns the seconds it took."""
    started = time.monotonic()
    for image, containerfile in (
        (POSTGRES_IMAGE, "Containerfile.postgres"),
        (REDIS_IMAGE, "Containerfile.redis"),
    ):
        if not image_exists(image):
            run(
                ["podman", "build", "--pull=never", "--quiet", "--build-arg", f"BASE_IMAGE={BASE_IMAGE}",
                 "-f", str(IMAGES_DIR / containerfile), "-t", image, str(IMAGES_DIR)],
                timeout=BUILD_DEADLINE_SECONDS,
            )  # fmt: skip
    return time.monotonic() - started


def build_project_image(pip_cert: str | None) -> float:
    """The repository's Dockerfile on the local base; returns the seconds it took.

    Args:
        pip_cert: The CA bundle pip needs behind this machine's TLS interception, passed as
            a build secret (mounted for the install only, never stored in the image).
    """
    command = ["podman", "build", "--pull=never", "--quiet", "--format", "docker",
               "--build-arg", f"BASE_IMAGE={BASE_IMAGE}", "-t", PROJECT_IMAGE]  # fmt: skip
    if pip_cert:
        command += ["--secret", f"id=pip_cert,src={pip_cert}"]
    started = time.monotonic()
    run([*command, str(REPO_ROOT)], timeout=BUILD_DEADLINE_SECONDS)
    return time.monotonic() - started


@dataclass
class ComposeStack:
    """One compose project in ``directory``: the real docker-compose.yml plus the test override.

    Args:
        directory: Where the copy of the compose files and the ``.env`` live.
        project: The compose project name (unique per run).
        env: The ``.env`` contents.
        secrets: Values to blank out of any output shown.
    """

    directory: Path
    project: str
    env: dict[str, str]
    secrets: list[str] = field(default_factory=list)

    def write(self, compose_file: Path = REPO_ROOT / "docker-compose.yml") -> None:
        """Copy the compose files and write ``.env``."""
        self.directory.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(compose_file, self.directory / "docker-compose.yml")
        shutil.copyfile(OVERRIDE_FILE, self.directory / "compose.test.yml")
        (self.directory / ".env").write_text("".join(f"{name}={value}\n" for name, value in self.env.items()))

    def compose(self, *arguments: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        """``podman-compose -p <project> -f docker-compose.yml -f compose.test.yml <arguments>``."""
        return run(
            [
                "podman-compose",
                "-p",
                self.project,
                "-f",
                "docker-compose.yml",
                "-f",
                "compose.test.yml",
                *arguments,
            ],
            cwd=self.directory,
            timeout=COMPOSE_DEADLINE_SECONDS,
            secrets=self.secrets,
            check=check,
        )

    def up(self) -> None:
        self.compose("up", "-d", "--no-build")

    def down(self) -> None:
        """Remove the containers, volumes and network, whatever state they are in."""
        self.compose("down", "-v", check=False)
        # podman-compose 1.0 leaves the project's network behind.
        run(["podman", "network", "rm", "-f", f"{self.project}_default"], timeout=60, check=False)

    def containers(self) -> dict[str, str]:
        """The project's container names by service."""
        listing = run(
            [
                "podman",
                "ps",
                "-a",
                "--format",
                "json",
                "--filter",
                f"label=io.podman.compose.project={self.project}",
            ],
            timeout=60,
        )
        return {
            entry["Labels"]["com.docker.compose.service"]: entry["Names"][0]
            for entry in json.loads(listing.stdout or b"[]")
        }

    def health_status(self, service: str) -> str:
        """What ``podman inspect`` says of a service's container health."""
        name = self.containers()[service]
        result = run(["podman", "inspect", "--format", "{{.State.Health.Status}}", name], timeout=60)
        return result.stdout.decode().strip()

    def wait_healthy(self, services: Sequence[str] = LONG_RUNNING) -> float:
        """Run the services' health checks until all pass; returns the seconds waited.

        Raises:
            StackError: The deadline passed; names the services still failing, with their logs.
        """
        started = time.monotonic()
        failing: list[str] = list(services)
        while time.monotonic() - started < HEALTHY_DEADLINE_SECONDS:
            names = self.containers()
            failing = [
                service for service in services
                if service not in names
                or run(["podman", "healthcheck", "run", names[service]], timeout=60, check=False).returncode != 0
            ]  # fmt: skip
            if not failing:
                return time.monotonic() - started
            time.sleep(HEALTH_POLL_SECONDS)
        raise StackError(
            f"not healthy after {HEALTHY_DEADLINE_SECONDS:.0f} s: {failing}\n{self.logs(failing)}"
        )

    def logs(self, services: Iterable[str], lines: int = 20) -> str:
        names = self.containers()
        parts = []
        for service in services:
            if service in names:
                result = run(
                    ["podman", "logs", "--tail", str(lines), names[service]], timeout=60, check=False
                )
                parts.append(f"--- {service}\n{(result.stdout + result.stderr).decode(errors='replace')}")
        return redact("\n".join(parts), self.secrets)

    def exec(self, service: str, *command: str, stdin: bytes | None = None, timeout: float) -> bytes:
        """Run ``command`` in a service's container; returns its standard output."""
        name = self.containers()[service]
        interactive = ["-i"] if stdin is not None else []
        result = run(
            ["podman", "exec", *interactive, name, *command],
            stdin=stdin,
            timeout=timeout,
            secrets=self.secrets,
        )
        return result.stdout


def pip_cert() -> str | None:
    """The CA bundle pip is told to trust on this machine (``PIP_CERT``), if any."""
    value = os.environ.get("PIP_CERT")
    return value if value and Path(value).is_file() else None
