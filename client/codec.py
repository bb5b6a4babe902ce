"""Request building and response decoding shared by the sync and async clients (no I/O here)."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
import numpy as np

from zoo.core import contract
from zoo.core.contract import LABEL, NUMPY_DTYPES, ONE_HOT, PROBABILITIES
from zoo.proto import grpc_service_pb2 as pb

DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024  # the server's default cap
REQUEST_OVERHEAD_BYTES = contract.MESSAGE_ENVELOPE_BYTES + contract.CLIENT_ID_ROOM_BYTES  # around the raw rows, both ways

# A request's threshold: one number, or one per class (multilabel) as a sequence of numbers or a string "0.1,0.9,0.5".
Threshold = float | Sequence[float] | np.ndarray | str


class ClientError(Exception):
    """Any failed call: the gRPC status code and the server's message."""

    def __init__(self, code: grpc.StatusCode, details: str):
        super().__init__(f"{code.name}: {details}")
        self.code = code
        self.details = details


def client_error(e: grpc.RpcError) -> ClientError:
    """The ClientError for a failed RPC."""
    return ClientError(e.code(), e.details() or "")


@dataclass
class ModelInfo:
    """What the server reports about one model version (ModelMetadata + ModelConfig parameters)."""

    name: str
    version: str  # the version these facts describe
    versions: list[str]  # every version the server has loaded
    platform: str
    task: str
    feature_names: list[str]
    class_names: list[str]
    default_threshold: float | list[float] | None  # a list: one per class (multilabel)
    inputs: list[tuple[str, str, list[int]]] = field(default_factory=list)  # (name, datatype, shape)
    outputs: list[tuple[str, str, list[int]]] = field(default_factory=list)
    properties: dict[str, str] = field(default_factory=dict)  # ModelMetadata's properties (strings; JSON where not text)

    @property
    def calibration_temperature(self) -> float | None:
        """The temperature the served probabilities were calibrated with, when the export recorded one."""
        raw = self.properties.get("calibration_temperature")
        return float(json.loads(raw)) if raw else None

    @property
    def operating_point(self) -> dict[str, Any] | None:
        """How the default thresholds were chosen and their validation and test scores, when the export recorded it."""
        raw = self.properties.get("operating_point")
        return json.loads(raw) if raw else None

    @property
    def num_features(self) -> int:
        """Width of an input row."""
        return len(self.feature_names)

    @property
    def num_classes(self) -> int:
        """Width of probabilities and one_hot."""
        return len(self.class_names)

    @property
    def input_name(self) -> str:
        """The name of the model's one input tensor, as the server reports it."""
        return self.inputs[0][0]

    def bytes_per_row(self) -> tuple[int, int]:
        """(request, response) bytes one row takes, from the tensors the server reports."""

        def size(tensors) -> int:
            return sum(NUMPY_DTYPES[dt].itemsize * math.prod(d for d in shape[1:] if d > 0) for _, dt, shape in tensors)

        return size(self.inputs), size(self.outputs)


@dataclass
class Prediction:
    """The answer for every row sent, in order; outputs not requested are None."""

    model: str
    version: str
    class_names: list[str]
    probabilities: np.ndarray | None  # FP32 [N, C]
    one_hot: np.ndarray | None  # FP32 [N, C]
    labels: np.ndarray | None  # INT64 [N]; -1 where no class is set
    outputs: dict[str, np.ndarray] = field(default_factory=dict)  # every tensor the server sent, by name

    @property
    def label_names(self) -> list[str | None]:
        """Class name of each row's label (None where no class is set)."""
        if self.labels is None:
            raise ValueError("the label output was not requested")
        return [self.class_names[k] if k >= 0 else None for k in self.labels.tolist()]

    def __len__(self) -> int:
        for a in (self.labels, self.probabilities, self.one_hot):
            if a is not None:
                return len(a)
        return 0


def as_rows(X) -> np.ndarray:
    """X as a C-contiguous float32 [N, F] array (a 1-D row gets the batch dimension)."""
    try:
        x = np.asarray(X, dtype=np.float32)
    except (TypeError, ValueError) as e:
        raise ClientError(grpc.StatusCode.INVALID_ARGUMENT, f"input is not numeric: {e}") from None
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2:
        raise ClientError(grpc.StatusCode.INVALID_ARGUMENT, f"expected a row [F] or rows [N, F]; got shape {list(x.shape)}")
    return np.ascontiguousarray(x)


def rows_per_request(info: ModelInfo, max_message_bytes: int) -> int:
    """How many rows fit one request and its response under the message cap (at least 1)."""
    budget = max_message_bytes - REQUEST_OVERHEAD_BYTES
    return max(1, budget // max(*info.bytes_per_row(), 1))


def split_rows(x: np.ndarray, rows: int) -> list[np.ndarray]:
    """x cut into consecutive chunks of at most `rows` rows (an empty x stays one chunk, for the server to judge)."""
    if len(x) <= rows:
        return [x]
    return [x[i : i + rows] for i in range(0, len(x), rows)]


def infer_request(
    model: str, x: np.ndarray, *, input_name: str, version: str = "", threshold: Threshold | None = None, outputs=None, request_id: str = ""
) -> pb.ModelInferRequest:
    """A ModelInferRequest carrying x as little-endian FP32 in raw_input_contents."""
    req = pb.ModelInferRequest(model_name=model, model_version=version, id=request_id)
    req.inputs.add(name=input_name, datatype=contract.INPUT_DATATYPE, shape=list(x.shape))
    req.raw_input_contents.append(x.astype(NUMPY_DTYPES[contract.INPUT_DATATYPE], copy=False).tobytes())
    for name in outputs or ():
        req.outputs.add(name=name)
    if isinstance(threshold, str):  # the server checks it (per-class strings are how stock clients send a list)
        req.parameters[contract.THRESHOLD_PARAM].string_param = threshold
    elif threshold is not None:
        t = np.asarray(threshold, dtype=np.float64)
        if t.ndim:  # one per class: a comma-separated string (repr keeps every digit)
            req.parameters[contract.THRESHOLD_PARAM].string_param = ",".join(repr(float(v)) for v in t.ravel())
        else:
            req.parameters[contract.THRESHOLD_PARAM].double_param = float(t)
    return req


def decode_outputs(resp: pb.ModelInferResponse) -> dict[str, np.ndarray]:
    """The response's tensors by name (raw_output_contents or typed contents)."""
    out: dict[str, np.ndarray] = {}
    for i, t in enumerate(resp.outputs):
        dtype = NUMPY_DTYPES.get(t.datatype)
        if dtype is None:
            raise ClientError(grpc.StatusCode.INTERNAL, f"output {t.name!r} has unsupported datatype {t.datatype}")
        if i < len(resp.raw_output_contents):
            arr = np.frombuffer(resp.raw_output_contents[i], dtype=dtype)
        else:
            arr = np.asarray(t.contents.fp32_contents if dtype.kind == "f" else t.contents.int64_contents, dtype=dtype)
        shape = [int(d) for d in t.shape]
        try:
            out[t.name] = arr.reshape(shape).astype(dtype.newbyteorder("="), copy=False)
        except ValueError:
            raise ClientError(grpc.StatusCode.INTERNAL, f"output {t.name!r}: {arr.size} values do not fill shape {shape}") from None
    return out


def assemble(model: str, version: str, class_names: list[str], parts: list[dict[str, np.ndarray]]) -> Prediction:
    """One Prediction from the decoded answers of consecutive chunks."""

    def join(name: str) -> np.ndarray | None:
        if any(name not in p for p in parts):
            return None
        return np.concatenate([p[name] for p in parts]) if len(parts) > 1 else parts[0][name]

    names = list(parts[0]) if parts else []
    outputs = {n: a for n in names if (a := join(n)) is not None}
    return Prediction(model, version, class_names, outputs.get(PROBABILITIES), outputs.get(ONE_HOT), outputs.get(LABEL), outputs)


def version_str(version: str | int | None) -> str:
    """A version as the protocol spells it ("" = the server's default)."""
    return "" if version is None else str(version)


def _split_names(value: str) -> list[str]:
    """The server sends name lists as JSON arrays."""
    if not value:
        return []
    names = json.loads(value)
    return [str(n) for n in names]


def _threshold(text: str) -> float | list[float]:
    """The config's default_threshold: a number, or a JSON array of one per class."""
    value = json.loads(text) if text.lstrip().startswith("[") else float(text)
    return [float(v) for v in value] if isinstance(value, list) else value


def model_info(md: pb.ModelMetadataResponse, cfg: pb.ModelConfigResponse) -> ModelInfo:
    """ModelInfo from the ModelMetadata and ModelConfig answers (names live in the config's parameters)."""
    params = {k: p.string_value for k, p in cfg.config.parameters.items()}
    threshold = params.get(contract.CONFIG_DEFAULT_THRESHOLD)
    return ModelInfo(
        name=md.name,
        version=params.get(contract.CONFIG_VERSION, ""),
        versions=list(md.versions),
        platform=md.platform,
        task=params.get(contract.CONFIG_TASK, ""),
        feature_names=_split_names(params.get(contract.CONFIG_FEATURE_NAMES, "")),
        class_names=_split_names(params.get(contract.CONFIG_CLASS_NAMES, "")),
        default_threshold=_threshold(threshold) if threshold else None,
        inputs=[(t.name, t.datatype, [int(d) for d in t.shape]) for t in md.inputs],
        outputs=[(t.name, t.datatype, [int(d) for d in t.shape]) for t in md.outputs],
        properties=dict(md.properties),
    )


def channel_options(max_message_bytes: int) -> list[tuple[str, int]]:
    """gRPC channel options capping both directions at max_message_bytes."""
    return [("grpc.max_send_message_length", max_message_bytes), ("grpc.max_receive_message_length", max_message_bytes)]


def credentials(tls: bool, root_certificates: bytes | None, certificate_chain: bytes | None = None, private_key: bytes | None = None):
    """Channel credentials for TLS (any certificate implies it; a chain and key for mTLS), or None for plaintext."""
    if not tls and root_certificates is None and certificate_chain is None:
        return None
    return grpc.ssl_channel_credentials(root_certificates=root_certificates, private_key=private_key, certificate_chain=certificate_chain)


def call_metadata(token: str | None) -> tuple[tuple[str, str], ...] | None:
    """The metadata every call carries: the bearer token, when there is one."""
    return (("authorization", f"Bearer {token}"),) if token else None


_propagate: Any = None  # opentelemetry.propagate once looked up; False when OpenTelemetry is not installed


def trace_metadata() -> tuple[tuple[str, str], ...]:
    """The caller's current W3C trace context (traceparent, tracestate) as gRPC metadata, so the server's spans join
    the caller's trace; () when OpenTelemetry is not installed or no span is active."""
    global _propagate
    if _propagate is None:
        try:
            from opentelemetry import propagate

            _propagate = propagate
        except ImportError:
            _propagate = False
    if _propagate is False:
        return ()
    carrier: dict[str, str] = {}
    _propagate.inject(carrier)
    return tuple(carrier.items())


def predict_plan(cache: dict, max_message_bytes: int, model: str, X, *, threshold=None, version=None, outputs=None):
    """The predict flow as a generator, driven by the sync and async clients alike.

    It yields ("info", model, version) or ("infer", request) and is sent back a ModelInfo or a
    ModelInferResponse; it returns the Prediction. `cache` maps (model, version) -> ModelInfo.
    """
    x = as_rows(X)
    wanted = version_str(version)
    info = cache.get((model, wanted))
    if info is None:
        info = cache[(model, wanted)] = yield ("info", model, wanted)
    chunks = split_rows(x, rows_per_request(info, max_message_bytes))
    parts, served = [], wanted
    for chunk in chunks:
        # Later chunks ask for the version that answered the first: a hot swap can't mix versions.
        resp = yield (
            "infer",
            infer_request(model, chunk, input_name=info.input_name, version=served, threshold=threshold, outputs=outputs),
        )
        served = served or resp.model_version
        parts.append(decode_outputs(resp))
    if info.version != served:
        info = cache.get((model, served))
        if info is None:
            info = cache[(model, served)] = yield ("info", model, served)
    return assemble(model, served, info.class_names, parts)
