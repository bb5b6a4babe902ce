"""ModelInferRequest -> InferenceCall and InferenceResult -> ModelInferResponse (raw little-endian tensors)."""

from __future__ import annotations

from typing import Any

import numpy as np

from zoo.core.contract import DATATYPES, ModelCard
from zoo.proto import grpc_service_pb2 as pb
from zoo.server.errors import InvalidInput
from zoo.server.inference import InferenceCall, InferenceResult, InputTensor, make_call


def parameters(params) -> dict[str, Any]:
    """A protobuf parameters map as plain Python values."""
    out: dict[str, Any] = {}
    for key, p in params.items():
        which = p.WhichOneof("parameter_choice")
        out[key] = getattr(p, which) if which else None
    return out


def inputs(request: pb.ModelInferRequest) -> list[InputTensor]:
    """The request's input tensors, each with its raw bytes or its typed values."""
    raw = request.raw_input_contents
    if raw and len(raw) != len(request.inputs) and len(request.inputs) == 1:
        raise InvalidInput(f"got {len(raw)} raw_input_contents for {len(request.inputs)} inputs")
    out = []
    for i, t in enumerate(request.inputs):
        contents = t.contents.ListFields() if t.HasField("contents") else []
        if raw:
            if contents:
                raise InvalidInput("send the input either in raw_input_contents or in contents, not both")
            out.append(InputTensor(t.name, t.datatype, t.shape, raw=raw[i] if i < len(raw) else b""))
            continue
        other = [fd.name for fd, _ in contents if fd.name != "fp32_contents"]
        if other:
            raise InvalidInput(f"input {t.name!r} holds values in {other[0]}: send FP32 values in fp32_contents")
        out.append(InputTensor(t.name, t.datatype, t.shape, values=t.contents.fp32_contents))
    return out


def decode(request: pb.ModelInferRequest, card: ModelCard) -> InferenceCall:
    """Step 1 for gRPC: the request checked against the model's card."""
    params = parameters(request.parameters) if request.parameters else {}
    return make_call(card, inputs(request), [o.name for o in request.outputs], params, request.id)


def encode(result: InferenceResult) -> pb.ModelInferResponse:
    """A ModelInferResponse carrying the result's tensors, in order, as raw_output_contents."""
    resp = pb.ModelInferResponse(model_name=result.model, model_version=str(result.version), id=result.request_id)
    for name, arr in result.outputs.items():
        resp.outputs.add(name=name, datatype=DATATYPES[arr.dtype], shape=arr.shape)
        # numpy on every platform we serve from is little-endian, as the protocol wants: tobytes is the wire form.
        resp.raw_output_contents.append(np.ascontiguousarray(arr).tobytes())
    return resp
