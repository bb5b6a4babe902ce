"""The versioned model repository on disk: `<root>/<name>/<version>/model.onnx` + metadata.json.

Torch-free: the exporter writes through it and the server reads through it.
Each model folder also holds a Triton-compatible `config.pbtxt`, so Triton loads the same tree.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

MODEL_FILE = "model.onnx"
METADATA_FILE = "metadata.json"
CONFIG_FILE = "config.pbtxt"
INPUT_NAME = "input"
OUTPUT_NAMES = ("probabilities", "one_hot", "label")
TASKS = ("multiclass", "binary", "multilabel")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def check_name(name: str) -> str:
    """Return `name` if it is a valid model name (letters, digits, '_', '-', '.'), else raise ValueError."""
    if not _NAME_RE.match(name or ""):
        raise ValueError(f"invalid model name {name!r}: use letters, digits, '_', '-' or '.' (at most 128)")
    return name


def model_names(root: str | Path) -> list[str]:
    """Names of the models in the repository (folders holding at least one numeric version)."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and versions(root, p.name))


def versions(root: str | Path, name: str) -> list[int]:
    """The model's versions, ascending (numeric folder names; staging folders are hidden and skipped)."""
    folder = Path(root) / name
    if not folder.is_dir():
        return []
    return sorted(int(p.name) for p in folder.iterdir() if p.is_dir() and p.name.isdigit() and int(p.name) > 0)


def latest_version(root: str | Path, name: str) -> int | None:
    """The highest version of a model, or None when it has none."""
    vs = versions(root, name)
    return vs[-1] if vs else None


def next_version(root: str | Path, name: str) -> int:
    """The version number the next export of `name` gets."""
    return (latest_version(root, name) or 0) + 1


def version_dir(root: str | Path, name: str, version: int) -> Path:
    """Folder of one version of one model."""
    return Path(root) / name / str(int(version))


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class ModelCard:
    """What a consumer needs to know about one exported model version (read from metadata.json)."""

    name: str
    version: int
    task: str
    feature_names: list[str]
    class_names: list[str]
    default_threshold: float
    model_sha256: str
    selfcheck_inputs: list[list[float]] = field(default_factory=list)
    selfcheck_probabilities: list[list[float]] = field(default_factory=list)
    extra: dict = field(default_factory=dict)

    @property
    def num_features(self) -> int:
        """Width of the input row."""
        return len(self.feature_names)

    @property
    def num_classes(self) -> int:
        """Width of `probabilities` and `one_hot`."""
        return len(self.class_names)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelCard":
        """Build a card from the parsed metadata.json; raises ValueError naming a missing or bad key."""
        try:
            card = cls(
                name=str(d["name"]),
                version=int(d["version"]),
                task=str(d["task"]),
                feature_names=[str(x) for x in d["feature_names"]],
                class_names=[str(x) for x in d["class_names"]],
                default_threshold=float(d["default_threshold"]),
                model_sha256=str(d["model_sha256"]),
                selfcheck_inputs=d.get("selfcheck", {}).get("inputs", []),
                selfcheck_probabilities=d.get("selfcheck", {}).get("probabilities", []),
                extra=d,
            )
        except KeyError as e:
            raise ValueError(f"metadata is missing key {e.args[0]!r}") from None
        if card.task not in TASKS:
            raise ValueError(f"metadata task {card.task!r} is not one of {', '.join(TASKS)}")
        return card


def read_card(root: str | Path, name: str, version: int) -> ModelCard:
    """Read and validate the metadata.json of one version."""
    path = version_dir(root, name, version) / METADATA_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{path} is missing") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON: {e}") from None
    return ModelCard.from_dict(data)


def verify_model_file(root: str | Path, card: ModelCard) -> Path:
    """Path of the version's model.onnx after checking it exists and matches the recorded SHA-256."""
    path = version_dir(root, card.name, card.version) / MODEL_FILE
    if not path.is_file():
        raise ValueError(f"{path} is missing")
    digest = sha256_file(path)
    if digest != card.model_sha256:
        raise ValueError(f"{path} is corrupt: SHA-256 {digest[:12]}... does not match the exported {card.model_sha256[:12]}...")
    return path
