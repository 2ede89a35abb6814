"""``docjobs admin``: the admin board's users."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from docjobs import errors
from docjobs.settings import Settings

#: The shortest board password ``docjobs admin create-user`` accepts.
MIN_PASSWORD_LENGTH = 12


def run_create_user(args: argparse.Namespace) -> int:
    """``docjobs admin create-user``: make EMAIL an ADMIN of the board, with a password read from stdin."""
    import getpass

    from docjobs.db.board import BoardStore
    from docjobs.db.pool import Database
    from docjobs.web.board.access import MAX_EMAIL_CHARS, MAX_PASSWORD_CHARS, hash_password
    from docjobs.web.board.inputs import BadInput, checked

    settings = Settings.from_environ()
    if settings.database_url is None:
        raise errors.SettingsError("NEXT_PRIVATE_DATABASE_URL is required to create a board user")

    def sign_in_takes(value: str, what: str, **limits: Any) -> None:
        """Refuse what the sign-in form would refuse: the user could never sign in."""
        try:
            checked(value, what, **limits)
        except BadInput as exc:
            raise errors.SettingsError(f"{exc.reason}; nothing was changed") from None

    email = args.email.strip().lower()
    sign_in_takes(email, "EMAIL", max_chars=MAX_EMAIL_CHARS)
    if "@" not in email:
        raise errors.SettingsError(f"EMAIL must be an email address, not {args.email!r}")
    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            raise errors.SettingsError("the two passwords differ; nothing was changed")
    else:
        password = sys.stdin.readline().rstrip("\n")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise errors.SettingsError(
            f"the password must have at least {MIN_PASSWORD_LENGTH} characters; nothing was changed"
        )
    sign_in_takes(password, "the password", max_chars=MAX_PASSWORD_CHARS, lines=True)
    database = Database(settings.database_url, max_size=1, transaction_pooling=settings.transaction_pooling)
    try:
        row = BoardStore(database).set_password(email, args.name, hash_password(password))
    finally:
        database.close()
    print(f"docjobs: {row['email']} (user {row['id']}) may sign in to the board as {', '.join(row['roles'])}")
    if row["sessions_ended"]:
        print(f"docjobs: signed out of {row['sessions_ended']} board session(s) with the old password")
    return 0
