"""ModelInferRequest -> InferRequest and InferenceResult -> ModelInferResponse (raw little-endian tensors, or the
client's shared-memory regions when a tensor's parameters name one)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from zoo.core.contract import DATATYPES
from zoo.proto import grpc_service_pb2 as pb
from zoo.server.errors import InvalidInput
from zoo.server.inference import InferenceResult, InferRequest, InputTensor
from zoo.server.shm import SharedMemory, Target, parse_target

TRACE_KEYS = ("traceparent", "tracestate")


def parameters(params) -> dict[str, Any]:
    """A protobuf parameters map as plain Python values."""
    out: dict[str, Any] = {}
    for key, p in params.items():
        which = p.WhichOneof("parameter_choice")
        out[key] = getattr(p, which) if which else None
    return out


def inputs(request: pb.ModelInferRequest, shm: SharedMemory | None = None) -> list[InputTensor]:
    """The request's input tensors, each with its raw bytes (inline or in shared memory) or its typed values."""
    raw = request.raw_input_contents
    if raw and len(raw) != len(request.inputs) and len(request.inputs) == 1:
        raise InvalidInput(f"got {len(raw)} raw_input_contents for {len(request.inputs)} inputs")
    out = []
    for i, t in enumerate(request.inputs):
        if t.parameters and shm is not None:
            region = shm.input_bytes(parameters(t.parameters), t.name, t.shape)
            if region is not None:
                out.append(InputTensor(t.name, t.datatype, t.shape, raw=region))
                continue
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


def decode(
    request: pb.ModelInferRequest, shm: SharedMemory | None = None, *, max_answer_bytes: int = 0, trace: dict[str, str] | None = None
) -> InferRequest:
    """A ModelInferRequest, whole, as the data plane takes it: inputs read (inline or from shared memory), outputs
    bound for the client's regions, parameters as plain values."""
    received = time.time_ns()
    params = parameters(request.parameters) if request.parameters else {}
    targets = {o.name: t for o in request.outputs if o.parameters and (t := parse_target(parameters(o.parameters), o.name))}
    if targets and shm is None:
        raise InvalidInput("this server does not take shared-memory outputs")
    return InferRequest(
        model=request.model_name,
        version=request.model_version,
        inputs=inputs(request, shm),
        outputs=[o.name for o in request.outputs],
        parameters=params,
        id=request.id,
        output_regions=targets,
        max_answer_bytes=max_answer_bytes,
        trace=trace or {},
        received_ns=received,
    )


def trace_context(metadata) -> dict[str, str]:
    """The W3C trace context (traceparent, tracestate) among a call's invocation metadata."""
    return {k: v for k, v in (metadata or ()) if k in TRACE_KEYS and isinstance(v, str)}


def encode(result: InferenceResult, shm: SharedMemory | None = None, targets: dict[str, Target] | None = None) -> pb.ModelInferResponse:
    """A ModelInferResponse: each tensor raw, in order, or written to its shared-memory region.

    Every output gets a raw_output_contents entry (empty when the tensor went to shared memory), as Triton does,
    so a stock client's positional lookup of the others stays right.
    """
    resp = pb.ModelInferResponse(model_name=result.model, model_version=str(result.version), id=result.request_id)
    for name, arr in result.outputs.items():
        out = resp.outputs.add(name=name, datatype=DATATYPES[arr.dtype], shape=arr.shape)
        target = targets.get(name) if targets else None
        if target is not None and shm is not None:
            shm.write(target, arr)
            out.parameters["shared_memory_region"].string_param = target.region
            out.parameters["shared_memory_byte_size"].int64_param = arr.nbytes
            if target.offset:
                out.parameters["shared_memory_offset"].int64_param = target.offset
            resp.raw_output_contents.append(b"")
            continue
        # numpy on every platform we serve from is little-endian, as the protocol wants: tobytes is the wire form.
        resp.raw_output_contents.append(np.ascontiguousarray(arr).tobytes())
    return resp
