"""v2 REST inference bodies <-> InputTensor / InferenceResult, with Triton's binary tensor data extension.

A body is a JSON header, optionally followed by raw little-endian tensors: the Inference-Header-Content-Length
header says where the JSON ends, and each binary input gives its byte count in parameters.binary_data_size, in
input order. Outputs asked for with binary_data (or, by default, the request's binary_data_output) come back
the same way, after the JSON of the response.
"""

from __future__ import annotations

import json
import logging
import reprlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from zoo.core.contract import DATATYPES, ModelCard
from zoo.server.errors import InvalidInput
from zoo.server.inference import InferenceCall, InferenceResult, InputTensor, make_call
from zoo.server.shm import BYTE_SIZE as SHM_BYTE_SIZE
from zoo.server.shm import REGION as SHM_REGION

log = logging.getLogger("zoo.server")

HEADER_LENGTH = "Inference-Header-Content-Length"
BINARY_DATA_SIZE, BINARY_DATA, BINARY_DATA_OUTPUT = "binary_data_size", "binary_data", "binary_data_output"
JSON_TYPE, BINARY_TYPE = "application/json", "application/octet-stream"
SHM_OVER_GRPC = (
    "system shared memory is served over gRPC only (SystemSharedMemoryRegister, then ModelInfer naming the region, "
    "e.g. tritonclient.grpc); over HTTP send tensors in the body (binary tensors for large ones)"
)
INFER_REQUEST = 'an inference request, a JSON object {"inputs": [...]} (optionally followed by binary tensor data)'
STDLIB_RETRY_BYTES = 1 << 20  # a body orjson refuses, up to this size, is read again by json for its NaN and Infinity
_SHORT = reprlib.Repr()  # a client's value quoted in a message, cut short at every level
_SHORT.maxlevel, _SHORT.maxlist, _SHORT.maxdict, _SHORT.maxstring, _SHORT.maxother = 2, 4, 4, 40, 40


@dataclass(slots=True)
class InferRequest:
    """A parsed inference body: transport-neutral inputs, and how each output is to be sent back."""

    inputs: list[InputTensor]
    outputs: list[str]
    binary: dict[str, bool]  # outputs whose parameters say binary_data
    binary_output: bool  # the request's binary_data_output: how the other outputs are sent
    parameters: dict[str, Any]
    id: str

    def call(self, card: ModelCard) -> InferenceCall:
        """Step 1 for HTTP: the request checked against the model's card."""
        return make_call(card, self.inputs, self.outputs, self.parameters, self.id)


def parse_json(data: bytes | bytearray | memoryview, what: str) -> Any:
    """The JSON document of a body; InvalidInput saying what was expected (logged in one line, no traceback).

    orjson: several times faster than json and a fraction of its memory. It refuses NaN and Infinity, which are
    not JSON; json reads them (Python's json.dumps writes them) so that a small body carrying them is refused
    naming the row, as on gRPC, rather than as JSON that does not parse.
    """
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as e:
        error: Exception = e
    if len(data) <= STDLIB_RETRY_BYTES:
        try:
            return json.loads(bytes(data))
        except (ValueError, RecursionError) as e:  # RecursionError: absurdly deep nesting
            error = e
    log.warning("refused a request body that is not valid JSON: %s", error)
    raise InvalidInput(f"the request body is not valid JSON ({error or 'nested too deep'}): expected {what}") from None


def decode(body: bytes | bytearray, header_length: str | None) -> InferRequest:
    """An inference body (and its Inference-Header-Content-Length, if sent) as an InferRequest."""
    end = _json_end(header_length, len(body))
    doc = parse_json(memoryview(body)[:end], INFER_REQUEST)
    if not isinstance(doc, dict):
        raise InvalidInput(f"expected {INFER_REQUEST}; got a JSON {json_type(doc)}")
    params = _object(doc.get("parameters"), "the request's parameters")
    rid = doc.get("id", "")
    if not isinstance(rid, str):
        raise InvalidInput(f"the request id must be a string; got {_shown(rid)}")
    outputs, binary = _outputs(doc.get("outputs"))
    return InferRequest(
        inputs=_inputs(doc.get("inputs"), memoryview(body)[end:], header_length is not None),
        outputs=outputs,
        binary=binary,
        binary_output=flag(params.get(BINARY_DATA_OUTPUT, False), f"parameter {BINARY_DATA_OUTPUT}"),
        parameters=params,
        id=rid,
    )


def encode(result: InferenceResult, request: InferRequest) -> tuple[bytes, int | None]:
    """The response body, and the length of its JSON when binary tensors follow it (else None)."""
    doc: dict[str, Any] = {"model_name": result.model, "model_version": str(result.version)}
    if result.request_id:
        doc["id"] = result.request_id
    outputs, parts = [], []
    for name, arr in result.outputs.items():
        out: dict[str, Any] = {"name": name, "datatype": DATATYPES[arr.dtype], "shape": list(arr.shape)}
        if request.binary.get(name, request.binary_output):
            # numpy on every platform we serve from is little-endian, as the protocol wants: tobytes is the wire form.
            raw = np.ascontiguousarray(arr).tobytes()
            out["parameters"] = {BINARY_DATA_SIZE: len(raw)}
            parts.append(raw)
        else:
            out["data"] = np.ascontiguousarray(arr).ravel()  # orjson writes numpy arrays itself, ~10x faster than lists
        outputs.append(out)
    doc["outputs"] = outputs
    header = orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY)
    if not parts:
        return header, None
    return b"".join([header, *parts]), len(header)


def json_type(value: Any) -> str:
    """The JSON name of a parsed value's type, for messages."""
    names = {dict: "object", list: "array", str: "string", bool: "boolean", int: "number", float: "number"}
    return names.get(type(value), "null")


def flag(value: Any, what: str) -> bool:
    """A JSON boolean; InvalidInput naming `what` for anything else."""
    if not isinstance(value, bool):
        raise InvalidInput(f"{what} must be true or false; got {_shown(value)}")
    return value


def _json_end(header_length: str | None, size: int) -> int:
    if header_length is None:
        return size
    try:
        end = int(header_length)
    except ValueError:
        end = -1
    if not 0 <= end <= size:
        raise InvalidInput(
            f"{HEADER_LENGTH} must be the byte length of the JSON, between 0 and the body's {size} bytes; got {_shown(header_length)}"
        )
    return end


def _inputs(items: Any, binary: memoryview, has_header_length: bool) -> list[InputTensor]:
    if not isinstance(items, list):
        raise InvalidInput(f"expected {INFER_REQUEST}; 'inputs' must be a list of tensors, got {_shown(items)}")
    out, offset = [], 0
    for i, t in enumerate(items):
        if not isinstance(t, dict):
            raise InvalidInput(f"inputs[{i}] must be a JSON object with name, datatype, shape and data; got {_shown(t)}")
        name, datatype, shape = t.get("name", ""), t.get("datatype", ""), t.get("shape", [])
        if not isinstance(name, str) or not isinstance(datatype, str):
            raise InvalidInput(f"inputs[{i}]: name and datatype must be strings")
        if not isinstance(shape, list) or not all(type(d) is int for d in shape):
            raise InvalidInput(f"input {_shown(name)}: shape must be a list of integers; got {_shown(shape)}")
        tensor_params = _object(t.get("parameters"), f"the parameters of input {_shown(name)}")
        refuse_shared_memory(tensor_params, f"input {_shown(name)}")
        size = tensor_params.get(BINARY_DATA_SIZE)
        if size is None:
            out.append(InputTensor(name, datatype, shape, values=_values(name, t.get("data"))))
            continue
        if type(size) is not int or size < 0:
            raise InvalidInput(f"input {_shown(name)}: {BINARY_DATA_SIZE} must be a byte count; got {_shown(size)}")
        if "data" in t:
            raise InvalidInput(f"input {_shown(name)} has both data and {BINARY_DATA_SIZE}: send it one way")
        if offset + size > len(binary):
            hint = "" if has_header_length else f" (send the {HEADER_LENGTH} header)"
            raise InvalidInput(
                f"input {_shown(name)} has {BINARY_DATA_SIZE} {size} but only {len(binary) - offset} bytes "
                f"of binary data follow the JSON{hint}"
            )
        out.append(InputTensor(name, datatype, shape, raw=binary[offset : offset + size]))
        offset += size
    if offset != len(binary):
        raise InvalidInput(f"{len(binary) - offset} bytes of binary data follow the JSON that no input's {BINARY_DATA_SIZE} claims")
    return out


def _values(name: str, data: Any) -> np.ndarray:
    """JSON data, flat or nested, as one flat array in row-major order (its numbers are checked by make_call)."""
    if not isinstance(data, list):
        raise InvalidInput(
            f"input {_shown(name)} needs data, a list of numbers (flat or nested), or binary data "
            f"with parameters.{BINARY_DATA_SIZE}; got {_shown(data)}"
        )
    try:
        return np.array(data).ravel()
    except (TypeError, ValueError):  # nested lists of unequal lengths
        raise InvalidInput(f"input {_shown(name)}: data must be a list of numbers, flat or nested in lists of equal length") from None


def _outputs(items: Any) -> tuple[list[str], dict[str, bool]]:
    if items is None:
        return [], {}
    if not isinstance(items, list):
        raise InvalidInput(f"'outputs' must be a list of {{\"name\": ...}} objects; got {_shown(items)}")
    names, binary = [], {}
    for i, o in enumerate(items):
        if not isinstance(o, dict) or not isinstance(o.get("name"), str):
            raise InvalidInput(f"outputs[{i}] must be a JSON object with a string name; got {_shown(o)}")
        name = o["name"]
        names.append(name)
        params = _object(o.get("parameters"), f"the parameters of output {_shown(name)}")
        refuse_shared_memory(params, f"output {_shown(name)}")
        if BINARY_DATA in params:
            binary[name] = flag(params[BINARY_DATA], f"output {_shown(name)}: parameter {BINARY_DATA}")
    return names, binary


def refuse_shared_memory(params: dict[str, Any], what: str) -> None:
    """InvalidInput for a tensor that names a shared-memory region: HTTP does not serve them, and ignoring one would
    answer with the tensor somewhere the client does not look."""
    if SHM_REGION in params or SHM_BYTE_SIZE in params:
        raise InvalidInput(f"{what} names a shared-memory region: {SHM_OVER_GRPC}")


def _object(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInput(f"{what} must be a JSON object; got {_shown(value)}")
    return value


def _shown(value: Any) -> str:
    """A client's value in an error message: bodies can be large."""
    return _SHORT.repr(value)
