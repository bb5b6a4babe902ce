"""Atomic file writes: a temp file in the same folder, fsync, then rename."""

from __future__ import annotations

import json
import os
import shutil
import socket
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


OWNER_FILE = ".owner"  # inside a staging folder: "<host> <pid>" of the process writing it


def publish_dir(staging: str | os.PathLike, final: str | os.PathLike) -> Path:
    """Move a fully written staging folder into place; fails if `final` already exists."""
    staging, final = Path(staging), Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    # os.rename of a folder onto a missing path is atomic on POSIX; an existing target is an error.
    if final.exists():
        raise FileExistsError(f"{final} already exists")
    (staging / OWNER_FILE).unlink(missing_ok=True)
    os.rename(staging, final)
    return final


def staging_dir(parent: str | os.PathLike, name: str) -> Path:
    """A hidden temp folder inside `parent` (same file system, so publish_dir can rename it), marked with its owner."""
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".staging", dir=parent))
    path.chmod(0o777 & ~_umask())  # mkdtemp makes 0700; the published folder should read like any other
    (path / OWNER_FILE).write_text(f"{socket.gethostname()} {os.getpid()}\n", encoding="utf-8")
    return path


def _owner_alive(folder: Path) -> bool:
    """Whether the process that made a staging folder still runs (only provable on this host)."""
    try:
        host, pid = (folder / OWNER_FILE).read_text(encoding="utf-8").split()
    except (OSError, ValueError):
        return False
    if host != socket.gethostname():
        return True  # another machine's export (a shared volume): not ours to judge
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError):
        return True
    return True


def remove_stale_staging(parent: str | os.PathLike, name: str, keep: str | os.PathLike) -> list[Path]:
    """Remove `name` staging folders in `parent` left by killed processes and older than `keep`; returns them."""
    parent, keep = Path(parent), Path(keep)
    mine = keep.stat().st_mtime_ns
    removed = []
    for folder in parent.glob(f".{name}.*.staging"):
        try:
            older = folder.stat().st_mtime_ns <= mine
        except OSError:
            continue
        if folder != keep and older and not _owner_alive(folder):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def remove_tree(path: str | os.PathLike) -> None:
    """Remove a folder if it is there."""
    shutil.rmtree(path, ignore_errors=True)
