"""What every `zoo` command shares: default folders and the one-line error exit."""

from __future__ import annotations

import sys
from typing import NoReturn

import click

DEFAULT_RUNS = "runs"
DEFAULT_REPOSITORY = "models"


def fail(message: str) -> NoReturn:
    """Print a one-line error and exit 1 (no traceback for errors the user can fix)."""
    click.secho(f"error: {message}", fg="red", err=True)
    sys.exit(1)


def card_of(repository: str, name: str, version: int | None):
    """The card of a model version in a repository (the latest when version is None), or exit 1 saying why."""
    from zoo.core import repository as repo
    from zoo.evaluate import resolve_version

    try:
        return repo.read_card(repository, name, resolve_version(repository, name, version))
    except (FileNotFoundError, ValueError) as e:
        fail(str(e))
