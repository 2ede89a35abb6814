"""docjobs' own jobs are sent by id from code that never imported them (a script using the flows)."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
from docjobs import jobs
from docjobs.testing import stub_runtime

with stub_runtime():
    message = jobs.trigger("send.password.reset.success.email", {"userId": 1})
    print(message.actor_name, message.queue_name)
"""


def test_an_own_job_is_declared_when_it_is_first_sent_by_id() -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60)
    assert 0 == done.returncode, done.stderr
    assert "send.password.reset.success.email emails" == done.stdout.strip()


def test_an_unknown_id_under_docjobs_prefixes_is_still_refused() -> None:
    script = SCRIPT.replace("send.password.reset.success.email", "send.no-such.email")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert 0 != done.returncode
    assert "ActorNotFound: no actor is declared as 'send.no-such.email'" in done.stderr
