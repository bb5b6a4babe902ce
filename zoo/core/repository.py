"""The versioned model repository on disk: `<root>/<name>/<version>/model.onnx` + metadata.json (torch-free).

The exporter writes through it, tools read through it; the server reads through its own guarded reader
(zoo/server/model_files.py), which applies the same name and version rules. Each model folder also holds a
Triton-compatible `config.pbtxt`, so Triton loads the same tree.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from zoo.core.contract import ModelCard

MODEL_FILE = "model.onnx"
METADATA_FILE = "metadata.json"
CONFIG_FILE = "config.pbtxt"
# Figures a training run made, carried into the version folder at export: figure -> file name. The names are fixed
# here, so a reader never builds a path from a request or from metadata; metadata.json's "figures" maps each
# figure carried to the SHA-256 of its bytes.
FIGURES = {
    "training_curve": "training_curve.png",
    "confusion_matrix": "confusion_matrix.png",
    "reliability_diagram": "reliability_diagram.png",  # drawn at export (zoo.training.decisions)
    "precision_recall": "precision_recall.png",  # drawn at export when the threshold is chosen on validation rows
}
FIGURES_KEY = "figures"
_SHA256 = re.compile(r"[0-9a-f]{64}")
MAX_NAME_LENGTH = 128
# One path component: letters, digits, '.', '_', '-'; never '.', '..' or a hidden name.
NAME_PATTERN = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._-]{{0,{MAX_NAME_LENGTH - 1}}}")
# Canonical decimals only: '01', '+1' or ' 1' are not version 1.
VERSION_PATTERN = re.compile(r"[1-9][0-9]{0,17}")


def is_valid_name(name: str) -> bool:
    """Whether `name` is a model name: one path component of the allowed characters."""
    return isinstance(name, str) and NAME_PATTERN.fullmatch(name) is not None


def check_name(name: str) -> str:
    """Return `name` if it is a valid model name, else raise ValueError saying what is allowed."""
    if not is_valid_name(name):
        raise ValueError(
            f"invalid model name {shown(name)}: use letters, digits, '.', '_' or '-', "
            f"at most {MAX_NAME_LENGTH} characters, not starting with '.', '_' or '-'"
        )
    return name


def parse_version(text: str) -> int | None:
    """The version a folder name or request string denotes, or None unless it is a canonical positive decimal."""
    return int(text) if isinstance(text, str) and VERSION_PATTERN.fullmatch(text) else None


def shown(text: object, limit: int = 64) -> str:
    """A name as echoed back in messages: quoted, and cut to `limit` characters."""
    s = str(text)
    return repr(s) if len(s) <= limit else repr(s[:limit]) + f"... ({len(s)} characters)"


def model_names(root: str | Path) -> list[str]:
    """Names of the models in the repository (valid names of folders holding at least one version)."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if is_valid_name(p.name) and p.is_dir() and versions(root, p.name))


def versions(root: str | Path, name: str) -> list[int]:
    """The model's versions, ascending (canonical numeric folder names; staging folders are hidden and skipped)."""
    folder = Path(root) / check_name(name)
    if not folder.is_dir():
        return []
    found = (parse_version(p.name) for p in folder.iterdir() if p.is_dir())
    return sorted(v for v in found if v is not None)


def latest_version(root: str | Path, name: str) -> int | None:
    """The highest version of a model, or None when it has none."""
    vs = versions(root, name)
    return vs[-1] if vs else None


def next_version(root: str | Path, name: str) -> int:
    """The version number the next export of `name` gets."""
    return (latest_version(root, name) or 0) + 1


def version_dir(root: str | Path, name: str, version: int) -> Path:
    """Folder of one version of one model."""
    return Path(root) / check_name(name) / str(int(version))


def sha256_bytes(data: bytes | memoryview) -> str:
    """Hex SHA-256 of bytes."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def figures(metadata: dict) -> dict[str, str]:
    """The figures a version's metadata records: figure -> SHA-256, known figures with a well-formed digest only."""
    found = metadata.get(FIGURES_KEY)
    if not isinstance(found, dict):
        return {}
    return {k: v for k, v in found.items() if k in FIGURES and isinstance(v, str) and _SHA256.fullmatch(v)}


def parse_card(text: str | bytes, source: str) -> ModelCard:
    """A card from metadata.json's text; ValueError naming `source` when it is not valid."""
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{source} is not valid JSON: {e}") from None
    try:
        return ModelCard.from_dict(data)
    except ValueError as e:
        raise ValueError(f"{source}: {e}") from None


def read_card(root: str | Path, name: str, version: int) -> ModelCard:
    """Read and validate the metadata.json of one version."""
    path = version_dir(root, name, version) / METADATA_FILE
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        raise ValueError(f"{path} is missing") from None
    return parse_card(text, str(path))


def verify_model_file(root: str | Path, card: ModelCard) -> Path:
    """Path of the version's model.onnx after checking it exists and matches the recorded SHA-256."""
    path = version_dir(root, card.name, card.version) / MODEL_FILE
    if not path.is_file():
        raise ValueError(f"{path} is missing")
    digest = sha256_file(path)
    if digest != card.model_sha256:
        raise ValueError(f"{path} is corrupt: SHA-256 {digest[:12]}... does not match the exported {card.model_sha256[:12]}...")
    return path
