"""Development secrets: generated once, kept under the data directory.

In production every secret comes from the environment and a missing one stops
start-up (see settings). With ``NODE_ENV=development``, a missing
``NEXT_PRIVATE_ENCRYPTION_SECONDARY_KEY`` is generated on first use and stored in
``<data dir>/secondary-key`` (mode 0600) so the web process and the workers started
from the same directory share it.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from docjobs import errors
from docjobs.settings import Settings

SECONDARY_KEY_FILE = "secondary-key"
GENERATED_KEY_BYTES = 32


def secondary_key(settings: Settings) -> bytes:
    """The key that signs self-trigger requests.

    Raises:
        errors.SettingsError: In production, when the variable is unset.
    """
    if settings.encryption_secondary_key is not None:
        return settings.encryption_secondary_key.get_secret_value().encode("utf-8")
    if not settings.is_development:
        raise errors.SettingsError("NEXT_PRIVATE_ENCRYPTION_SECONDARY_KEY is required outside development")
    return _load_or_create(Path(settings.data_dir) / SECONDARY_KEY_FILE)


def _load_or_create(path: Path) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: when two processes start at once, exactly one writes the key.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_text("ascii").strip()
        if not key:
            raise errors.SettingsError(
                f"{path} is empty; delete it to generate a new development key"
            ) from None
        return key.encode("ascii")
    key = secrets.token_hex(GENERATED_KEY_BYTES)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    return key.encode("ascii")
