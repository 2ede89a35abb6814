"""``docjobs migrate|web|worker|scheduler|trigger|inngest|admin|demo``.

Every flag has an environment variable (shown in ``--help``); a flag given on the
command line wins. A bad setting stops the command with one line naming it.

Here the commands are run and their errors turned into one line and an exit code;
``parser`` holds every command and flag, ``processes``, ``oneshot`` and
``board_users`` the commands themselves.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Sequence

import psycopg
from dramatiq.errors import BrokerConnectionError

from docjobs import errors, redaction
from docjobs import logging as docjobs_logging
from docjobs.cli.parser import build_parser

#: Exit code for bad settings or arguments (argparse uses it too).
EXIT_USAGE = 2
#: Exit code when the database cannot be reached.
EXIT_UNAVAILABLE = 3
#: Exit code of an unexpected error (a bug).
EXIT_FAILURE = 1


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return EXIT_USAGE
    try:
        code: int = args.run(args)
    except errors.DocjobsError as exc:
        _say(f"docjobs: error: {exc}")
        return EXIT_USAGE
    except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn) as exc:
        reason = docjobs_logging.first_line(exc)
        _say(f"docjobs: error: the database schema is out of date ({reason}): run docjobs migrate")
        return EXIT_USAGE
    except (psycopg.OperationalError, BrokerConnectionError) as exc:
        reason = docjobs_logging.first_line(exc)
        # Redis's and Inngest's errors name their server; libpq's (the local broker's too) do not.
        from_database = isinstance(exc, psycopg.OperationalError) or isinstance(
            exc.__cause__, psycopg.OperationalError
        )
        what = "the database is unreachable: " if from_database else ""
        _say(f"docjobs: error: {what}{reason}")
        return EXIT_UNAVAILABLE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`| head`): nothing more to say, and nothing to flush at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:  # noqa: BLE001 - a bug: its traceback helps, its secrets must not show
        _say(traceback.format_exc().rstrip(), one_line=False)
        _say(f"docjobs: error: {type(exc).__name__}: {exc}")
        return EXIT_FAILURE
    return code


def _say(text: str, *, one_line: bool = True) -> None:
    """Print an error to stderr, redacted (every error path may carry a URL or a secret)."""
    text = redaction.redact(text)
    print(docjobs_logging.one_line(text) if one_line else text, file=sys.stderr)
