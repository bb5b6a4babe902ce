"""Triton's ModelConfig for a zoo model, built once: config.pbtxt on disk and the ModelConfig RPC are the same message."""

from __future__ import annotations

import json

from google.protobuf import text_format

from zoo.core import contract
from zoo.core.contract import Batching, ModelCard
from zoo.proto import model_config_pb2 as mc

_DATA_TYPES = {"FP32": mc.TYPE_FP32, "INT64": mc.TYPE_INT64}


def build(card: ModelCard, batching: Batching, *, runtime: dict[str, str] | None = None) -> mc.ModelConfig:
    """The ModelConfig of `card` batched by `batching`; `runtime` adds facts only a server knows (provider, version)."""
    cfg = mc.ModelConfig(name=card.name, platform=contract.PLATFORM, backend=contract.BACKEND, max_batch_size=batching.max_batch_size)
    # Triton's dims leave out the batch dimension; a per-row scalar is dims [1] reshaped to [] (on the wire [N]).
    spec = card.input
    cfg.input.add(name=spec.name, data_type=_DATA_TYPES[spec.datatype], dims=list(spec.shape[1:]))
    for spec in card.outputs:
        out = cfg.output.add(name=spec.name, data_type=_DATA_TYPES[spec.datatype], dims=list(spec.shape[1:]) or [1])
        if len(spec.shape) == 1:
            out.reshape.SetInParent()
    cfg.dynamic_batching.max_queue_delay_microseconds = batching.max_queue_delay_us
    params = {
        contract.CONFIG_TASK: card.task,
        # a number, or a JSON array of one per class (multilabel)
        contract.CONFIG_DEFAULT_THRESHOLD: json.dumps(t) if isinstance(t := card.default_threshold, list) else repr(t),
        contract.CONFIG_FEATURE_NAMES: json.dumps(card.feature_names),
        contract.CONFIG_CLASS_NAMES: json.dumps(card.class_names),
        **(runtime or {}),
    }
    for key, value in params.items():
        cfg.parameters[key].string_value = value
    return cfg


def to_pbtxt(cfg: mc.ModelConfig) -> str:
    """The message in protobuf text format: what Triton reads from config.pbtxt."""
    return text_format.MessageToString(cfg)


def from_pbtxt(text: str) -> mc.ModelConfig:
    """Parse a config.pbtxt back into the message."""
    return text_format.Parse(text, mc.ModelConfig())
