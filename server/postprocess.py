"""Per-request output selection and thresholding, on plain numpy (zoo.core.decision holds the semantics)."""

from __future__ import annotations

import math

import numpy as np

from zoo.core import decision
from zoo.core.repository import OUTPUT_NAMES, ModelCard
from zoo.server.errors import InvalidInput

THRESHOLD_PARAM = "threshold"


def select_outputs(requested: list[str]) -> list[str]:
    """The outputs to send, in request order (all when none requested); raises InvalidInput for unknown names."""
    if not requested:
        return list(OUTPUT_NAMES)
    unknown = [n for n in requested if n not in OUTPUT_NAMES]
    if unknown:
        raise InvalidInput(f"unknown output {unknown[0]!r}: this model has outputs {', '.join(OUTPUT_NAMES)}")
    return list(dict.fromkeys(requested))  # a name asked twice is sent once


def parse_threshold(parameters: dict[str, object]) -> float | None:
    """The per-request threshold from the request parameters, or None; raises InvalidInput when not in [0, 1]."""
    if THRESHOLD_PARAM not in parameters:
        return None
    raw = parameters[THRESHOLD_PARAM]
    if isinstance(raw, bool) or raw is None:
        raise InvalidInput(f"parameter threshold must be a number in [0, 1]; got {raw!r}")
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise InvalidInput(f"parameter threshold must be a number in [0, 1]; got {raw!r}") from None
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise InvalidInput(f"parameter threshold must be a number in [0, 1]; got {raw!r}")
    return value


def finish(outputs: dict[str, np.ndarray], card: ModelCard, names: list[str], threshold: float | None) -> dict[str, np.ndarray]:
    """The requested outputs; one_hot and label are recomputed when a threshold other than the default is asked."""
    result = dict(outputs)
    if threshold is not None and threshold != card.default_threshold:
        p = outputs["probabilities"]
        result["one_hot"] = decision.one_hot(p, card.task, threshold)
        result["label"] = decision.labels(p, card.task, threshold)
    return {n: result[n] for n in names}
