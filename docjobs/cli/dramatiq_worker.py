"""``python -m docjobs.cli.dramatiq_worker``: Dramatiq's command line, logging as docjobs does.

``docjobs worker`` runs this rather than ``python -m dramatiq``, with the same
arguments: Dramatiq's own format (``[time] [PID n] [thread] [logger] [LEVEL]``)
would make the worker the one command whose lines read differently. Logging is
configured here and Dramatiq is told not to (``--skip-logging``); its worker
processes are forked from this one and keep the handler, which writes to the pipe
Dramatiq gives each of them (``docjobs.logging.StderrHandler``).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import dramatiq.cli

from docjobs import errors
from docjobs import logging as docjobs_logging
from docjobs.settings import Settings

#: How ``docjobs worker`` runs this module (``docjobs health`` reads it in a container's command).
MODULE = "docjobs.cli.dramatiq_worker"


def main(argv: Sequence[str] | None = None) -> int:
    """Run Dramatiq's command line with ``argv`` (``sys.argv[1:]`` by default); returns its exit code."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    try:
        level = Settings.from_environ().log_level
    except errors.SettingsError:
        level = "INFO"  # the worker processes' import of the broker says what is wrong, in one line
    docjobs_logging.configure(level)
    # On SIGHUP Dramatiq re-executes sys.argv: make that this module again.
    sys.argv = [sys.executable, "-m", MODULE, *arguments]
    options = dramatiq.cli.make_argument_parser().parse_args([*arguments, "--skip-logging"])
    code: int = dramatiq.cli.main(options)
    return code


if __name__ == "__main__":
    sys.exit(main())
