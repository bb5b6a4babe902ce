"""Where the model browser's pages live."""

from __future__ import annotations

from urllib.parse import quote


def model_path(name: str) -> str:
    """The page of a model (its default version)."""
    return f"/models/{quote(name, safe='')}"


def version_path(name: str, version: str) -> str:
    """The page of one version; its figures live beneath it."""
    return f"{model_path(name)}/versions/{quote(version, safe='')}"
