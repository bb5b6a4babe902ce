"""The model contract: what every exported zoo model takes and gives, stated once.

Torch-free and numpy-only. The exporter builds graphs to it, the server checks loaded sessions against it and
answers metadata from it, the client and tools read it back. A model's own facts (features, classes, task,
threshold) come from its card, written once at export into metadata.json.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np

PLATFORM = "onnxruntime_onnx"  # Triton's platform name for ONNX models
BACKEND = "onnxruntime"
INPUT_NAME = "input"
INPUT_DATATYPE = "FP32"  # the one input: rows of float32 features
PROBABILITIES, ONE_HOT, LABEL = "probabilities", "one_hot", "label"
OUTPUT_NAMES = (PROBABILITIES, ONE_HOT, LABEL)


class Task(StrEnum):
    """What a model decides: one class of several, yes or no, or any set of labels (a str, as metadata.json has it)."""

    MULTICLASS = "multiclass"
    BINARY = "binary"
    MULTILABEL = "multilabel"


TASKS = tuple(Task)

# Request parameter: a per-request decision threshold. Stock clients (tritonclient, KServe's SDK) can only send
# bool, int and str parameters, so a numeric string is accepted as well as a double.
THRESHOLD_PARAM = "threshold"

# ModelConfig parameters carrying the card's facts to clients; name lists are JSON arrays (names may hold commas).
CONFIG_TASK = "task"
CONFIG_FEATURE_NAMES = "feature_names"
CONFIG_CLASS_NAMES = "class_names"
CONFIG_DEFAULT_THRESHOLD = "default_threshold"
CONFIG_VERSION = "version"
CONFIG_EXECUTION_PROVIDER = "execution_provider"

# Room for what a message holds besides its tensors (names, datatypes, shapes, parameters). The server refuses an
# answer whose tensors and this (and its request id) pass --max-message-bytes before the model runs; the client sizes
# its chunks by the same figure, with room for its ids, so no chunk it sends is refused.
MESSAGE_ENVELOPE_BYTES = 4096
CLIENT_ID_ROOM_BYTES = 64  # the client's own request ids ("12.345") are far shorter

# KServe v2 datatypes of the tensors zoo exchanges, little-endian on the wire.
NUMPY_DTYPES: dict[str, np.dtype] = {"FP32": np.dtype("<f4"), "INT64": np.dtype("<i8")}
DATATYPES: dict[np.dtype, str] = {np.dtype(np.float32): "FP32", np.dtype(np.int64): "INT64"}


@dataclass(frozen=True)
class Batching:
    """Dynamic batching settings, shared by the server and the config.pbtxt written at export."""

    max_batch_size: int = 1024  # rows per model call; larger requests are split, not refused
    # Longest a batch waits for the company the previous batch had (a lone caller never waits); Triton, reading
    # config.pbtxt, waits this long for any batch.
    max_queue_delay_us: int = 2000


DEFAULT_BATCHING = Batching()


@dataclass(frozen=True)
class TensorSpec:
    """One tensor of the contract: name, KServe v2 datatype and shape (-1: the batch dimension)."""

    name: str
    datatype: str
    shape: tuple[int, ...]

    @property
    def dtype(self) -> np.dtype:
        """The numpy dtype of the tensor on the wire."""
        return NUMPY_DTYPES[self.datatype]


def _threshold(value: Any) -> float | list[float]:
    """A card's default_threshold: one number, or a list of numbers (per class)."""
    if isinstance(value, list):
        return [float(v) for v in value]
    return float(value)


@dataclass
class ModelCard:
    """The facts of one exported model version, as recorded in its metadata.json."""

    name: str
    version: int
    task: str
    feature_names: list[str]
    class_names: list[str]
    default_threshold: float | list[float]  # a list (one per class) only for multilabel models
    model_sha256: str
    selfcheck_inputs: list[list[float]] = field(default_factory=list)
    selfcheck_probabilities: list[list[float]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)  # the whole metadata.json

    @property
    def num_features(self) -> int:
        """Width of the input row."""
        return len(self.feature_names)

    @property
    def num_classes(self) -> int:
        """Width of `probabilities` and `one_hot`."""
        return len(self.class_names)

    @property
    def input(self) -> TensorSpec:
        """The one input: FP32 rows of the features."""
        return TensorSpec(INPUT_NAME, INPUT_DATATYPE, (-1, self.num_features))

    @property
    def outputs(self) -> tuple[TensorSpec, ...]:
        """The outputs, in graph order."""
        c = self.num_classes
        return (TensorSpec(PROBABILITIES, "FP32", (-1, c)), TensorSpec(ONE_HOT, "FP32", (-1, c)), TensorSpec(LABEL, "INT64", (-1,)))

    @classmethod
    def from_dict(cls, d: dict) -> ModelCard:
        """Build a card from the parsed metadata.json; raises ValueError naming a missing or bad key."""
        if not isinstance(d, dict):
            raise ValueError(f"metadata must be a JSON object; got {type(d).__name__}")
        try:
            selfcheck = d.get("selfcheck") or {}
            card = cls(
                name=str(d["name"]),
                version=int(d["version"]),
                task=str(d["task"]),
                feature_names=[str(x) for x in d["feature_names"]],
                class_names=[str(x) for x in d["class_names"]],
                default_threshold=_threshold(d["default_threshold"]),
                model_sha256=str(d["model_sha256"]),
                selfcheck_inputs=list(selfcheck.get("inputs", [])),
                selfcheck_probabilities=list(selfcheck.get("probabilities", [])),
                extra=d,
            )
        except KeyError as e:
            raise ValueError(f"metadata is missing key {e.args[0]!r}") from None
        except (TypeError, ValueError, AttributeError) as e:
            raise ValueError(f"metadata has a malformed value: {e}") from None
        if card.task not in TASKS:
            raise ValueError(f"metadata task {card.task!r} is not one of {', '.join(TASKS)}")
        if not card.feature_names or len(card.class_names) < 2:
            raise ValueError(f"metadata lists {card.num_features} features and {card.num_classes} classes; need >= 1 and >= 2")
        card._check_values()
        return card

    def _check_values(self) -> None:
        """ValueError naming the first value that cannot be what it claims (the card is served as the model's facts)."""
        t = self.default_threshold
        if isinstance(t, list) and (self.task != "multilabel" or len(t) != self.num_classes):
            raise ValueError(
                f"metadata default_threshold may be a list only for a multilabel model, one per class ({self.num_classes}); "
                f"got {len(t)} numbers for a {self.task} model"
            )
        if not all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in (t if isinstance(t, list) else [t])):
            raise ValueError(f"metadata default_threshold must be a number in [0, 1] (it is compared with probabilities); got {t!r}")
        if self.task == "binary" and self.num_classes != 2:
            raise ValueError(f"metadata task binary needs exactly 2 class_names; got {self.num_classes}")
        for what, names in (("class_names", self.class_names), ("feature_names", self.feature_names)):
            twice = [n for n, count in Counter(names).items() if count > 1]
            if twice:
                raise ValueError(f"metadata {what} must be distinct; {twice[0]!r} appears more than once")
        if not (len(self.model_sha256) == 64 and all(c in "0123456789abcdef" for c in self.model_sha256)):
            raise ValueError(f"metadata model_sha256 must be 64 lowercase hex digits; got {self.model_sha256[:80]!r}")
        rows, probs = self.selfcheck_inputs, self.selfcheck_probabilities
        if len(rows) != len(probs):
            raise ValueError(f"metadata selfcheck has {len(rows)} input rows but {len(probs)} probability rows")
        for what, table, key, listed in (
            ("inputs", rows, "feature_names", self.num_features),
            ("probabilities", probs, "class_names", self.num_classes),
        ):
            for i, row in enumerate(table):
                if not isinstance(row, list) or len(row) != listed:
                    held = f"{len(row)} numbers" if isinstance(row, list) else f"a {type(row).__name__}"
                    raise ValueError(f"metadata selfcheck {what} row {i} holds {held}, but {key} lists {listed}")
