"""The command line from app code, as a newcomer meets it (issue 20): one rule, one format, one line."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from io import BytesIO
from pathlib import Path

import psycopg
from docjobs_devkit.http import Receiver
from docjobs_devkit.pdfs import sample_pdf
from docjobs_devkit.services import free_port
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import signers

from docjobs.pdf.identity import SigningIdentity, identity_from_pkcs12, write_development_certificate
from tests.conftest import job_row, wait_for
from tests.support.processes import Processes, cli_env, docjobs

#: The console script, run from the directory holding the app's module (as a newcomer runs it).
CONSOLE_SCRIPT = str(Path(sys.executable).parent / "docjobs")
#: A line of docjobs' log format: time, level, logger, message.
DOCJOBS_LINE = re.compile(r"\d\d:\d\d:\d\d (DEBUG|INFO|WARNING|ERROR|CRITICAL) +\S+: ")
APP_MODULE = """
    import docjobs

    @docjobs.actor("app.here", display_name="Here")
    def here(*, note: str = "") -> None:
        pass
"""


def run_here(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CONSOLE_SCRIPT, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )


def start_here(
    processes: Processes, *args: str, cwd: Path, env: dict[str, str], log: Path
) -> subprocess.Popen[bytes]:
    """Start the console script in ``cwd``; the fixture stops it after the test."""
    with open(log, "ab") as output:
        process = subprocess.Popen(
            [CONSOLE_SCRIPT, *args],
            cwd=cwd,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    processes.started.append(process)
    return process


def signed_pdf(pkcs12: bytes, title: str) -> tuple[SigningIdentity, bytes]:
    """A one-page PDF signed with the certificate of ``pkcs12`` (no passphrase), and its identity."""
    identity = identity_from_pkcs12(pkcs12, None, source="the test certificate")
    signed = BytesIO()
    signers.sign_pdf(
        IncrementalPdfFileWriter(BytesIO(sample_pdf(1, title=title))),
        signers.PdfSignatureMetadata(field_name="Seal"),
        signer=identity.signer,
        output=signed,
    )
    return identity, signed.getvalue()


def test_a_job_id_declared_twice_is_refused_in_one_line_naming_both_places(
    environ: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / "app_twice.py").write_text(
        textwrap.dedent("""
            import docjobs

            @docjobs.actor("internal.seal-document")
            def mine(*, document_id: int) -> None:
                pass
        """)
    )
    both = re.compile(
        r"job id 'internal\.seal-document' is already declared by docjobs\.actors\.sealing\.seal_document "
        r"\(\S+/docjobs/actors/sealing\.py:\d+\); app_twice\.mine \(app_twice\.py:4\) declares it again"
    )
    env = cli_env(environ)
    trigger = run_here("trigger", "app.x", "{}", "--actors", "app_twice", cwd=tmp_path, env=env)
    assert 2 == trigger.returncode
    (line,) = trigger.stderr.splitlines()
    assert both.search(line), line
    # The worker processes import the module: Dramatiq's failed import, in one line too.
    worker = run_here("worker", "app_twice", "--processes", "1", "--threads", "1", cwd=tmp_path, env=env)
    assert 0 != worker.returncode
    assert "Traceback" not in worker.stderr, worker.stderr
    refusals = [line for line in worker.stderr.splitlines() if both.search(line)]
    assert 1 == len(refusals), worker.stderr


def test_the_worker_logs_in_the_format_of_every_other_command_and_finds_modules_here(
    environ: dict[str, str], database_url: str, processes: Processes, tmp_path: Path
) -> None:
    (tmp_path / "app_here.py").write_text(textwrap.dedent(APP_MODULE))
    env = cli_env(environ)
    log = tmp_path / "worker.log"
    start_here(
        processes, "worker", "app_here", "--processes", "1", "--threads", "1", cwd=tmp_path, env=env, log=log
    )
    sent = run_here("trigger", "app.here", "{}", "--actors", "app_here", cwd=tmp_path, env=env)
    assert 0 == sent.returncode, sent.stderr
    wait_for(lambda: job_row(database_url, sent.stdout.strip())["status"] == "COMPLETED", timeout=30)
    processes.stop_all()
    lines = log.read_text().splitlines()
    # Dramatiq's own lines, the parent's and the worker process's, and docjobs' job lines.
    for says in ("is booting up.", "Worker process is ready for action.", "(app.here) completed"):
        (line,) = [line for line in lines if says in line]
        assert DOCJOBS_LINE.match(line), line
    assert not [line for line in lines if line.startswith("[")], lines  # Dramatiq's "[time] [PID n] ..."


def test_the_web_app_and_trigger_find_a_module_in_the_current_directory(
    environ: dict[str, str], database_url: str, processes: Processes, tmp_path: Path
) -> None:
    (tmp_path / "app_here.py").write_text(textwrap.dedent(APP_MODULE))
    port = free_port()
    env = cli_env(environ, PORT=str(port), NEXT_PRIVATE_INTERNAL_WEBAPP_URL=f"http://127.0.0.1:{port}")
    log = tmp_path / "web.log"
    start_here(
        processes, "web", "--actors", "app_here", "--host", "127.0.0.1", cwd=tmp_path, env=env, log=log
    )
    sent = run_here("trigger", "app.here", '{"note": "web"}', "--actors", "app_here", cwd=tmp_path, env=env)
    assert 0 == sent.returncode, sent.stderr
    # Only the web app's embedded worker runs jobs here: it imported app_here.
    wait_for(lambda: job_row(database_url, sent.stdout.strip())["status"] == "COMPLETED", timeout=30)
    assert "cannot load actor module" not in log.read_text()


def test_an_unknown_job_id_names_the_closest_declared_id_or_the_module_to_load(
    environ: dict[str, str],
) -> None:
    env = cli_env(environ)
    typo = docjobs("trigger", "internal.seal-documnet", "{}", env=env)
    assert 2 == typo.returncode
    assert [
        "docjobs: error: no actor is declared as 'internal.seal-documnet': did you mean 'internal.seal-document'?"
    ] == typo.stderr.splitlines()
    elsewhere = docjobs("trigger", "reports.send-weekly", "{}", env=env)
    assert 2 == elsewhere.returncode
    (line,) = elsewhere.stderr.splitlines()
    assert line.startswith("docjobs: error: no actor is declared as 'reports.send-weekly': import the module")
    assert "--actors MODULE" in line


def test_a_second_trigger_with_the_same_id_says_nothing_was_enqueued(
    environ: dict[str, str], database_url: str
) -> None:
    env = cli_env(environ)
    arguments = (
        "trigger",
        "test.record",
        '{"key": "once"}',
        "--id",
        "once-1",
        "--actors",
        "tests.support.actors",
    )
    first = docjobs(*arguments, env=env)
    assert (0, "once-1\n") == (first.returncode, first.stdout), first.stderr
    second = docjobs(*arguments, env=env)
    # Exit 0: what --id asks for holds (one job with this id); stdout names no job sent.
    assert (0, "") == (second.returncode, second.stdout), second.stderr
    assert "docjobs: nothing enqueued: a job with id 'once-1' exists" in second.stderr.splitlines()
    with psycopg.connect(database_url) as conn:
        assert (1,) == conn.execute("SELECT count(*) FROM background_job WHERE id = 'once-1'").fetchone()


def test_verify_reports_each_finding_and_exits_0_valid_1_not_valid_2_unreadable(
    signing_certificate: bytes, tmp_path: Path
) -> None:
    identity, signed = signed_pdf(signing_certificate, "Verified")
    tampered = bytearray(signed)
    tampered[tampered.index(b"stream") + 20] ^= 0x01  # a byte of the first stream: inside the signed range
    files = {
        "signed.pdf": signed,
        "appended.pdf": signed + b"\n% added after signing\n",
        "tampered.pdf": bytes(tampered),
        "unsigned.pdf": sample_pdf(1),
        "garbage.pdf": b"not a PDF",
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    (tmp_path / "seal.p12").write_bytes(signing_certificate)
    write_development_certificate(tmp_path / "other.p12")
    env = cli_env({})

    def verify(name: str, certificate: str = "seal.p12") -> tuple[int, list[str], str]:
        ran = subprocess.run(
            [sys.executable, "-m", "docjobs", "verify", name, "--certificate", certificate],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        return ran.returncode, ran.stdout.splitlines(), ran.stderr

    code, lines, errors = verify("signed.pdf")
    assert (0, "") == (code, errors)
    assert [
        f"signed.pdf: signed by {identity.subject}",
        "signed.pdf: intact: the signed bytes are unchanged",
        "signed.pdf: valid: the signature verifies against seal.p12",
        "signed.pdf: whole file: the signature covers every byte of the file",
        "signed.pdf: VALID",
    ] == lines
    code, lines, _ = verify("appended.pdf")
    assert 1 == code and "appended.pdf: NOT the whole file: bytes were added after the signature" in lines
    code, lines, _ = verify("tampered.pdf")
    assert 1 == code and "tampered.pdf: NOT intact: the signed bytes were changed after signing" in lines
    code, lines, errors = verify("signed.pdf", "other.p12")
    assert (1, "") == (code, errors)
    assert "signed.pdf: NOT valid: the signature does not verify against other.p12" in lines
    assert (1, ["unsigned.pdf: NOT signed"], "") == verify("unsigned.pdf")
    assert (2, [], "docjobs: error: garbage.pdf: not a readable PDF: Illegal PDF header\n") == verify(
        "garbage.pdf"
    )
    code, lines, errors = verify("missing.pdf")
    assert (2, [], "docjobs: error: missing.pdf: cannot read: No such file or directory\n") == (
        code,
        lines,
        errors,
    )


def test_the_worker_says_a_module_it_cannot_import_in_the_web_apps_one_line(
    environ: dict[str, str], tmp_path: Path
) -> None:
    env = cli_env(environ, PORT=str(free_port()))
    expected = (
        "docjobs: error: cannot load actor module 'reprots': ModuleNotFoundError: No module named 'reprots'"
    )
    web = run_here("web", "--actors", "reprots", "--host", "127.0.0.1", cwd=tmp_path, env=env)
    assert (2, [expected]) == (web.returncode, web.stderr.splitlines())
    # Before: Dramatiq's 13-line traceback, its CRITICAL line printed before an earlier ERROR line.
    worker = run_here("worker", "reprots", cwd=tmp_path, env=env)
    assert (2, [expected], "") == (worker.returncode, worker.stderr.splitlines(), worker.stdout)


def test_a_worker_without_threads_or_processes_is_refused_in_one_line(environ: dict[str, str]) -> None:
    env = cli_env(environ)
    for flag in ("--threads", "--processes"):
        # Before: accepted; a worker that looked healthy and ran nothing.
        result = docjobs("worker", flag, "0", env=env, timeout=30)
        name = flag.removeprefix("--")
        assert (
            2,
            [f"docjobs: error: {flag} must be 1 or more, not 0: a worker needs {name} to run jobs"],
        ) == (
            result.returncode,
            result.stderr.splitlines(),
        ), flag


def test_a_send_wakes_the_web_app_on_port_without_an_internal_url(environ: dict[str, str]) -> None:
    with Receiver().running() as web_app:
        port = web_app.url.rsplit(":", 1)[1]
        env = cli_env(environ, PORT=port, NEXT_PRIVATE_INTERNAL_WEBAPP_URL="")
        sent = docjobs(
            "trigger", "test.record", '{"key": "port"}', "--actors", "tests.support.actors", env=env
        )
        assert 0 == sent.returncode, sent.stderr
        # Before: the self-request went to http://localhost:3000, whatever PORT said.
        assert [f"/api/jobs/test.record/{sent.stdout.strip()}"] == [
            request.path for request in web_app.requests
        ]


def test_verify_in_a_fresh_shell_needs_only_the_file_and_the_development_certificate(tmp_path: Path) -> None:
    data_dir = tmp_path / ".docjobs"
    write_development_certificate(data_dir / "signing-certificate.p12")
    _, signed = signed_pdf((data_dir / "signing-certificate.p12").read_bytes(), "Fresh shell")
    (data_dir / "sealed").mkdir()
    (data_dir / "sealed" / "Lease agreement.pdf").write_bytes(signed)
    fresh_shell = cli_env({})  # no NEXT_PRIVATE_* at all, no NODE_ENV: production

    def verify(*args: str, cwd: Path = tmp_path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "docjobs", "verify", *args],
            cwd=cwd, env=fresh_shell, capture_output=True, text=True, timeout=60,
        )  # fmt: skip

    # Before: "docjobs: error: NEXT_PRIVATE_DATABASE_URL is required with NEXT_PRIVATE_JOBS_PROVIDER=local ...".
    valid = verify(".docjobs/sealed/Lease agreement.pdf")
    assert (0, "") == (valid.returncode, valid.stderr)
    assert (
        ".docjobs/sealed/Lease agreement.pdf: valid: the signature verifies against the development "
        "certificate .docjobs/signing-certificate.p12"
    ) in valid.stdout.splitlines()
    assert ".docjobs/sealed/Lease agreement.pdf: VALID" == valid.stdout.splitlines()[-1]
    # The file first: a wrong name is said as such, wherever the certificate is.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    missing = verify("nope.pdf", cwd=elsewhere)
    assert (2, "docjobs: error: nope.pdf: cannot read: No such file or directory\n") == (
        missing.returncode,
        missing.stderr,
    )
    (elsewhere / "copy.pdf").write_bytes(signed)
    no_certificate = verify("copy.pdf", cwd=elsewhere)
    assert 2 == no_certificate.returncode
    assert [
        "docjobs: error: no certificate to trust: NEXT_PRIVATE_SIGNING_LOCAL_FILE_PATH and "
        "NEXT_PRIVATE_SIGNING_LOCAL_FILE_CONTENTS are unset, and .docjobs/signing-certificate.p12 does not "
        "exist (NEXT_PRIVATE_JOBS_DATA_DIR) (or give the certificate to trust: --certificate FILE)"
    ] == no_certificate.stderr.splitlines()
    assert not (elsewhere / ".docjobs").exists()  # no certificate was made up
