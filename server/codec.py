"""Protobuf <-> numpy for ModelInfer: decode and validate the input tensor, encode outputs as raw bytes."""

from __future__ import annotations

import numpy as np

from zoo.proto import grpc_service_pb2 as pb
from zoo.core.repository import INPUT_NAME, ModelCard
from zoo.server.errors import InvalidInput

# numpy dtype -> KServe v2 datatype of the tensors we send back.
DATATYPES = {np.dtype(np.float32): "FP32", np.dtype(np.int64): "INT64"}


def expected(card: ModelCard) -> str:
    """The input contract in words, used at the start of every input error."""
    return f"expected FP32 [-1, {card.num_features}] ({', '.join(card.feature_names)})"


def _shape(shape) -> str:
    return "[" + ", ".join(str(int(d)) for d in shape) + "]"


def decode_input(request: pb.ModelInferRequest, card: ModelCard) -> np.ndarray:
    """The request's rows as a C-contiguous FP32 [N, F] array; raises InvalidInput saying what was wrong."""
    want = expected(card)
    if len(request.inputs) != 1:
        names = [t.name for t in request.inputs]
        raise InvalidInput(f"{want} as one input named {INPUT_NAME!r}; got {len(names)} inputs {names}")
    tensor = request.inputs[0]
    if tensor.name != INPUT_NAME:
        raise InvalidInput(f"{want} as input {INPUT_NAME!r}; got input {tensor.name!r}")
    if tensor.datatype != "FP32":
        raise InvalidInput(f"{want}; got datatype {tensor.datatype or '(none)'}: send float32 values")
    shape = list(tensor.shape)
    f = card.num_features
    if len(shape) == 1 and shape[0] == f:
        raise InvalidInput(f"{want}; got {_shape(shape)}: add the batch dimension")
    if len(shape) != 2 or shape[1] != f:
        raise InvalidInput(f"{want}; got {_shape(shape)}")
    n = shape[0]
    if n <= 0:
        raise InvalidInput(f"{want}; got {_shape(shape)}: send at least one row")
    has_typed = tensor.HasField("contents") and len(tensor.contents.ListFields()) > 0
    if request.raw_input_contents:
        if has_typed:
            raise InvalidInput("send the input either in raw_input_contents or in contents, not both")
        if len(request.raw_input_contents) != 1:
            raise InvalidInput(f"got {len(request.raw_input_contents)} raw_input_contents for 1 input")
        raw = request.raw_input_contents[0]
        need = n * f * 4
        if len(raw) != need:
            raise InvalidInput(f"{want}; shape {_shape(shape)} needs {need} bytes of FP32, got {len(raw)} bytes")
        x = np.frombuffer(raw, dtype="<f4").reshape(n, f)
    else:
        values = tensor.contents.fp32_contents
        other = [fd.name for fd, _ in tensor.contents.ListFields() if fd.name != "fp32_contents"]
        if other:
            raise InvalidInput(f"{want}; got values in {other[0]}: use fp32_contents")
        if len(values) != n * f:
            raise InvalidInput(f"{want}; shape {_shape(shape)} needs {n * f} fp32_contents, got {len(values)}")
        x = np.asarray(values, dtype=np.float32).reshape(n, f)
    # A finite sum proves every value finite (NaN and Inf propagate), in one vectorised pass and no
    # temporary mask; only a non-finite sum (bad input, or an overflow of huge values) pays the full check.
    with np.errstate(over="ignore", invalid="ignore"):
        total = x.sum()
    if np.isfinite(total):
        return x
    bad = ~np.isfinite(x)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise InvalidInput(f"row {row} holds {x[row, col]} in {card.feature_names[col]}: inputs must be finite numbers")
    return x


def request_parameters(request: pb.ModelInferRequest) -> dict[str, object]:
    """The request-level parameters as plain Python values."""
    out: dict[str, object] = {}
    for key, p in request.parameters.items():
        which = p.WhichOneof("parameter_choice")
        out[key] = getattr(p, which) if which else None
    return out


def requested_outputs(request: pb.ModelInferRequest) -> list[str]:
    """Names of the outputs the client asked for (empty: all)."""
    return [o.name for o in request.outputs]


def encode_response(
    request: pb.ModelInferRequest, version: int, outputs: dict[str, np.ndarray], parameters: dict[str, object] | None = None
) -> pb.ModelInferResponse:
    """A ModelInferResponse carrying `outputs` (in order) as raw_output_contents."""
    resp = pb.ModelInferResponse(model_name=request.model_name, model_version=str(version), id=request.id)
    for key, value in (parameters or {}).items():
        if isinstance(value, float):
            resp.parameters[key].double_param = value
        else:
            resp.parameters[key].string_param = str(value)
    for name, arr in outputs.items():
        arr = np.ascontiguousarray(arr)
        resp.outputs.add(name=name, datatype=DATATYPES[arr.dtype], shape=arr.shape)
        resp.raw_output_contents.append(arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes())
    return resp
