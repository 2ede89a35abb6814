"""The modules of actors every command loads: docjobs' own, then the app's."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Sequence

from docjobs import errors

DEFAULT_ACTOR_MODULES = ("docjobs.actors",)


def load_actor_modules(modules: Sequence[str]) -> None:
    """Import docjobs' actors and the given modules (each declares its actors).

    The current directory is on the path, as the ``dramatiq`` command has it, so
    every command finds the same modules.

    Raises:
        errors.SettingsError: A module cannot be imported, or refused an actor's
            declaration (a name taken, an unknown option), in one line.
    """
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    for name in (*DEFAULT_ACTOR_MODULES, *modules):
        try:
            importlib.import_module(name)
        except (ImportError, ValueError) as exc:
            raise errors.SettingsError(
                f"cannot load actor module {name!r}: {type(exc).__name__}: {exc}"
            ) from exc
