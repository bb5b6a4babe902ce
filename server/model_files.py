"""The server's only door to the repository on disk: names checked, paths contained, files bounded.

Blocking calls, meant for loader threads (server/loader.py runs them with a time limit). Nothing a client sends
reaches a path outside the repository: a model name is one path component of a strict pattern, it must resolve
to a direct child of the repository after symlinks are followed (unless external symlinks are allowed), and only
regular files of bounded size are opened, without blocking (a FIFO or a device is refused by fstat, never read).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from zoo.core import repository
from zoo.core.contract import ModelCard
from zoo.core.repository import METADATA_FILE, MODEL_FILE, shown
from zoo.server.errors import InvalidInput

MAX_METADATA_BYTES = 16 * 1024 * 1024  # 8 self-check rows of a very wide model fit many times over
MAX_FIGURE_BYTES = 8 * 1024 * 1024  # matplotlib's PNGs of a run are tens of kilobytes; a 1,000-class matrix stays far below
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

Signature = tuple  # what stat says of a version's files; a change means the files changed


@dataclass(frozen=True)
class VersionFiles:
    """The bytes of one version, read once: the card, and the model the card vouches for."""

    card: ModelCard
    model: bytes
    signature: Signature


class RepositoryFiles:
    """Read access to one model repository root."""

    def __init__(self, root: str | os.PathLike, *, max_model_bytes: int, allow_external_symlinks: bool = False):
        self.root = Path(root)
        self.max_model_bytes = max_model_bytes
        self.allow_external_symlinks = allow_external_symlinks

    @staticmethod
    def check_name(name: str) -> str:
        """`name` if it is a model name (no file-system access); InvalidInput saying what a name may be otherwise."""
        if not repository.is_valid_name(name):
            raise InvalidInput(
                f"invalid model name {shown(name)}: a model name is letters, digits, '.', '_' or '-' "
                f"(at most {repository.MAX_NAME_LENGTH}, not starting with '.', '_' or '-')"
            )
        return name

    def model_dir(self, name: str) -> Path:
        """The folder of model `name`; InvalidInput for a bad name, ValueError when it leaves the repository."""
        path = self.root / self.check_name(name)
        if not self.allow_external_symlinks:
            real, real_root = os.path.realpath(path), os.path.realpath(self.root)
            if os.path.dirname(real) != real_root:
                raise ValueError(
                    f"{name} resolves outside the repository (a symlink to a folder outside it); "
                    "refused unless the server runs with --allow-external-symlinks"
                )
        return path

    def shown(self, path: Path) -> str:
        """`path` as a message shows it: relative to the repository, never the server's absolute path."""
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return path.name

    def model_names(self) -> list[str]:
        """Valid names of the folders at the repository's top level (whether they hold versions or not)."""
        try:
            with os.scandir(self.root) as entries:
                return sorted(e.name for e in entries if repository.is_valid_name(e.name) and e.is_dir())
        except FileNotFoundError:
            return []

    def versions(self, name: str) -> list[int]:
        """Canonical version folders of a model, ascending ([] when the model folder is gone)."""
        folder = self.model_dir(name)
        try:
            with os.scandir(folder) as entries:
                found = (repository.parse_version(e.name) for e in entries if e.is_dir())
                return sorted(v for v in found if v is not None)
        except (FileNotFoundError, NotADirectoryError):
            return []
        except OSError as e:  # the error's own text would name the server's absolute path
            raise ValueError(f"{self.shown(folder)} cannot be listed: {e.strerror}") from None

    def signature(self, name: str, version: int) -> Signature:
        """stat facts of the version's two files (None for a missing one): equal signatures, unchanged files."""
        folder = self.model_dir(name) / str(version)
        out: list[tuple | None] = []
        for fname in (METADATA_FILE, MODEL_FILE):
            try:
                st = os.stat(folder / fname)
            except OSError:
                out.append(None)
            else:
                out.append((st.st_ino, st.st_dev, st.st_size, st.st_mtime_ns, st.st_ctime_ns, stat.S_IFMT(st.st_mode)))
        return tuple(out)

    def read_version(self, name: str, version: int) -> VersionFiles:
        """Read and check one version's files; ValueError saying what is wrong with them."""
        folder = self.model_dir(name) / str(version)
        signature = self.signature(name, version)
        meta_path = folder / METADATA_FILE
        card = repository.parse_card(self._read(meta_path, MAX_METADATA_BYTES, "--"), self.shown(meta_path))
        if card.name != name or card.version != version:
            raise ValueError(f"{self.shown(meta_path)} says {card.name} v{card.version}, but the folder is {name}/{version}")
        model_path = folder / MODEL_FILE
        model = self._read(model_path, self.max_model_bytes, "--max-model-bytes")
        digest = repository.sha256_bytes(model)
        if digest != card.model_sha256:
            shown_path, recorded = self.shown(model_path), card.model_sha256[:12]
            raise ValueError(f"{shown_path} is corrupt: SHA-256 {digest[:12]}... does not match the exported {recorded}...")
        return VersionFiles(card, model, signature)

    def read_figure(self, name: str, version: int, figure: str, sha256: str) -> bytes:
        """A figure's PNG bytes from the version's folder (file name from repository.FIGURES, never from a caller);
        ValueError unless they are a PNG whose SHA-256 is the one its card records."""
        fname = repository.FIGURES.get(figure)
        if fname is None:
            raise ValueError(f"{shown(figure)} is not a figure; figures are {', '.join(repository.FIGURES)}")
        path = self.model_dir(name) / str(int(version)) / fname
        data = self._read(path, MAX_FIGURE_BYTES, "--")
        digest = repository.sha256_bytes(data)
        if digest != sha256:
            shown_path = self.shown(path)
            raise ValueError(f"{shown_path} changed since export: SHA-256 {digest[:12]}... does not match the recorded {sha256[:12]}...")
        if not data.startswith(PNG_SIGNATURE):  # the card vouches for these bytes; still, only a PNG goes out as image/png
            raise ValueError(f"{self.shown(path)} is not a PNG")
        return data

    def _read(self, path: Path, limit: int, flag: str) -> bytes:
        """A regular file's bytes, at most `limit`; it must lie inside the model's folder once symlinks resolve."""
        model_real = os.path.realpath(path.parents[1])
        shown_path = self.shown(path)
        if not self.allow_external_symlinks and not os.path.realpath(path).startswith(model_real + os.sep):
            raise ValueError(f"{shown_path} is a symlink that leaves the model's folder; refused")
        try:
            # O_NONBLOCK: opening a FIFO must not wait for a writer; fstat then refuses anything but a regular file.
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError:
            raise ValueError(f"{shown_path} is missing") from None
        except OSError as e:
            raise ValueError(f"{shown_path} cannot be opened: {e.strerror}") from None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise ValueError(f"{shown_path} is not a regular file ({_kind(st.st_mode)}); refused")
            if st.st_size > limit:
                hint = f" (raise it with {flag})" if flag != "--" else ""
                raise ValueError(f"{shown_path} is {st.st_size:,} bytes; the limit is {limit:,}{hint}")
            chunks, total = [], 0
            while True:
                chunk = os.read(fd, min(1 << 22, limit + 1 - total))
                if not chunk:
                    break
                chunks.append(chunk)
                total += len(chunk)
                if total > limit:  # grew while we read
                    raise ValueError(f"{shown_path} grew past the limit of {limit:,} bytes while being read")
            return b"".join(chunks)
        finally:
            os.close(fd)


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISDIR, "a folder"),
    ):
        if test(mode):
            return name
    return "not a plain file"
