"""A model's decision facts as the `properties` of its metadata (Open Inference Protocol: a map of strings), so a client
learns how the model decides without reading config.pbtxt: task, classes, default thresholds, calibration, operating
point. Values that are not plain strings are JSON."""

from __future__ import annotations

import json
from typing import Any

from zoo.core.contract import ModelCard

TASK, CLASS_NAMES, DEFAULT_THRESHOLD = "task", "class_names", "default_threshold"
TEMPERATURE, OPERATING_POINT = "calibration_temperature", "operating_point"
OPERATING_POINT_KEYS = ("chosen_by", "threshold", "validation", "test")  # not the curve: it is long, and on the page


def model_properties(card: ModelCard) -> dict[str, str]:
    """The properties of one version's metadata, every value a string."""
    props = {
        TASK: card.task,
        CLASS_NAMES: json.dumps(card.class_names, ensure_ascii=False),
        DEFAULT_THRESHOLD: json.dumps(card.default_threshold),
    }
    calibration: Any = card.extra.get("calibration")
    if isinstance(calibration, dict) and isinstance(calibration.get("temperature"), int | float):
        props[TEMPERATURE] = json.dumps(calibration["temperature"])
    point: Any = card.extra.get("operating_point")
    if isinstance(point, dict):
        props[OPERATING_POINT] = json.dumps({k: point[k] for k in OPERATING_POINT_KEYS if k in point}, ensure_ascii=False)
    return props
