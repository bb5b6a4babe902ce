"""Atomic file writes: a temp file in the same folder, fsync, then rename."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write bytes to `path` so readers see the old file or the whole new one, never a part."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp makes 0600 files; give the mode a plain open() would (a server in a container
        # running as another user must be able to read an exported model).
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write text atomically (UTF-8)."""
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj) -> Path:
    """Write JSON atomically, indented and with a trailing newline."""
    return write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def publish_dir(staging: str | os.PathLike, final: str | os.PathLike) -> Path:
    """Move a fully written staging folder into place; fails if `final` already exists."""
    staging, final = Path(staging), Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    # os.rename of a folder onto a missing path is atomic on POSIX; an existing target is an error.
    if final.exists():
        raise FileExistsError(f"{final} already exists")
    os.rename(staging, final)
    return final


def staging_dir(parent: str | os.PathLike, name: str) -> Path:
    """A hidden temp folder inside `parent` (same file system, so publish_dir can rename it)."""
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".staging", dir=parent))
    path.chmod(0o777 & ~_umask())  # mkdtemp makes 0700; the published folder should read like any other
    return path


def remove_tree(path: str | os.PathLike) -> None:
    """Remove a folder if it is there."""
    shutil.rmtree(path, ignore_errors=True)
