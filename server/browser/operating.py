"""The validation curve a version's export chose its threshold from (metadata.json operating_point.validation_curve),
as the try-it slider reads it: precision, recall and coverage at any threshold, per class where there are several."""

from __future__ import annotations

import bisect
import math
from typing import Any

from zoo.core.contract import ModelCard

SCORES = ("precision", "recall", "accuracy", "coverage")  # in the order they are written; coverage always there


def curves(card: ModelCard) -> dict[str, dict[str, list[float]]]:
    """{curve name: {threshold, scores...}} with ascending thresholds; {} when the card records no usable curve.
    Binary and multilabel curves have precision, recall and coverage; multiclass, the top class's accuracy of the
    answered rows and coverage."""
    point: Any = card.extra.get("operating_point")
    raw = point.get("validation_curve") if isinstance(point, dict) else None
    if not isinstance(raw, dict):
        return {}
    if card.task == "multilabel":
        named = {c: raw.get(c) for c in card.class_names}
    elif card.task == "binary":
        named = {card.class_names[-1]: raw}
    else:
        named = {"top class": raw}
    out = {name: _checked(c) for name, c in named.items()}
    return {} if any(c is None for c in out.values()) else {n: c for n, c in out.items() if c is not None}


def _checked(c: Any) -> dict[str, list[float]] | None:
    """One curve with finite numbers in equal-length series and ascending thresholds, or None."""
    if not isinstance(c, dict) or not isinstance(c.get("threshold"), list) or not c["threshold"] or "coverage" not in c:
        return None
    n = len(c["threshold"])
    out = {}
    for key in ("threshold", *SCORES):
        values = c.get(key)
        if values is None:
            continue
        if not isinstance(values, list) or len(values) != n or not all(isinstance(v, int | float) and math.isfinite(v) for v in values):
            return None
        out[key] = [float(v) for v in values]
    return out if out["threshold"] == sorted(out["threshold"]) else None


def at(curve: dict[str, list[float]], t: float) -> dict[str, float] | None:
    """The curve's scores at threshold t: those of its first point at or above t (the rows with a probability >= t are
    those at or above that point), or None when t is above every point (no row answered)."""
    i = bisect.bisect_left(curve["threshold"], t)
    if i == len(curve["threshold"]):
        return None
    return {k: v[i] for k, v in curve.items() if k != "threshold"}


def describe(name: str, scores: dict[str, float] | None) -> str:
    """One curve's scores at a threshold, in words (the script writes the same)."""
    if scores is None:
        return f"{name}: no validation row reaches this threshold"
    return f"{name}: " + ", ".join(f"{k} {scores[k]:.2f}" for k in SCORES if k in scores)
