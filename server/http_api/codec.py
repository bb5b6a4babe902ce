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
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from zoo.core.contract import DATATYPES
from zoo.server.errors import InvalidInput
from zoo.server.http_api import json_tensors
from zoo.server.inference import InferenceResult, InferRequest, InputTensor
from zoo.server.shm import BYTE_SIZE as SHM_BYTE_SIZE
from zoo.server.shm import OFFSET as SHM_OFFSET
from zoo.server.shm import REGION as SHM_REGION
from zoo.server.shm import SharedMemory, Target, parse_target

log = logging.getLogger("zoo.server")

HEADER_LENGTH = "Inference-Header-Content-Length"
BINARY_DATA_SIZE, BINARY_DATA, BINARY_DATA_OUTPUT = "binary_data_size", "binary_data", "binary_data_output"
JSON_TYPE, BINARY_TYPE = "application/json", "application/octet-stream"
INFER_REQUEST = 'an inference request, a JSON object {"inputs": [...]} (optionally followed by binary tensor data)'
SMALL_JSON_BYTES = 64 * 1024  # JSON up to this size is read whole; larger, its tensors a slice at a time (json_tensors)
STDLIB_RETRY_BYTES = 1 << 20  # a body orjson refuses, up to this size, is read again by json for its NaN and Infinity
_SHORT = reprlib.Repr()  # a client's value quoted in a message, cut short at every level
_SHORT.maxlevel, _SHORT.maxlist, _SHORT.maxdict, _SHORT.maxstring, _SHORT.maxother = 2, 4, 4, 40, 40


@dataclass(slots=True)
class InferBody:
    """A parsed inference body: transport-neutral inputs, and how each output is to be sent back."""

    inputs: list[InputTensor]
    outputs: list[str]
    binary: dict[str, bool]  # outputs whose parameters say binary_data
    binary_output: bool  # the request's binary_data_output: how the other outputs are sent
    parameters: dict[str, Any]
    id: str
    shm: SharedMemory | None = None  # the regions this request may use (those of the server, or none for a remote peer)
    shm_outputs: dict[str, Target] = field(default_factory=dict)  # outputs the client wants in its regions
    received_ns: int = field(default_factory=time.time_ns)

    def request(self, model: str, version: str, trace: dict[str, str]) -> InferRequest:
        """The request as the data plane takes it."""
        return InferRequest(
            model=model,
            version=version,
            inputs=self.inputs,
            outputs=self.outputs,
            parameters=self.parameters,
            id=self.id,
            output_regions=self.shm_outputs,
            trace=trace,
            received_ns=self.received_ns,
        )


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


def decode(body: bytes | bytearray, header_length: str | None, shm: SharedMemory | None = None) -> InferBody:
    """An inference body (and its Inference-Header-Content-Length, if sent) as an InferBody; tensors that name a
    shared-memory region are read from it (inputs) or bound for it (outputs) through `shm`."""
    end = _json_end(header_length, len(body))
    doc = _infer_json(memoryview(body)[:end])
    if not isinstance(doc, dict):
        raise InvalidInput(f"expected {INFER_REQUEST}; got a JSON {json_type(doc)}")
    params = _object(doc.get("parameters"), "the request's parameters")
    rid = doc.get("id", "")
    if not isinstance(rid, str):
        raise InvalidInput(f"the request id must be a string; got {_shown(rid)}")
    outputs, binary, targets = _outputs(doc.get("outputs"), shm)
    return InferBody(
        inputs=_inputs(doc.get("inputs"), memoryview(body)[end:], header_length is not None, shm),
        outputs=outputs,
        binary=binary,
        binary_output=flag(params.get(BINARY_DATA_OUTPUT, False), f"parameter {BINARY_DATA_OUTPUT}"),
        parameters=params,
        id=rid,
        shm=shm,
        shm_outputs=targets,
    )


def _infer_json(text: memoryview) -> Any:
    """The JSON of an inference body, its tensors' data as float32 arrays (json_tensors); a body that reader
    refuses is read the ordinary way, small ones only where the error message is all that is left to find."""
    if len(text) <= SMALL_JSON_BYTES:  # a few rows: whole, at once, is faster
        return parse_json(text, INFER_REQUEST)
    try:
        return json_tensors.parse(text)
    except json_tensors.NotTensorData:
        return parse_json(text, INFER_REQUEST)
    except (orjson.JSONDecodeError, ValueError) as e:  # not JSON, or data that is not numbers
        if len(text) <= STDLIB_RETRY_BYTES:
            return parse_json(text, INFER_REQUEST)  # the messages (NaN named by row, values not numbers) of the usual path
        log.warning("refused an inference body: %s", e)
        raise InvalidInput(f"the request body is not {INFER_REQUEST}: {str(e)[:200]}") from None


def encode(result: InferenceResult, request: InferBody) -> tuple[bytes, int | None]:
    """The response body, and the length of its JSON when binary tensors follow it (else None)."""
    doc: dict[str, Any] = {"model_name": result.model, "model_version": str(result.version)}
    if result.request_id:
        doc["id"] = result.request_id
    outputs, parts = [], []
    for name, arr in result.outputs.items():
        out: dict[str, Any] = {"name": name, "datatype": DATATYPES[arr.dtype], "shape": list(arr.shape)}
        target = request.shm_outputs.get(name)
        if target is not None and request.shm is not None:
            request.shm.write(target, arr)
            out["parameters"] = {SHM_REGION: target.region, SHM_BYTE_SIZE: arr.nbytes, SHM_OFFSET: target.offset}
        elif request.binary.get(name, request.binary_output):
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


def _inputs(items: Any, binary: memoryview, has_header_length: bool, shm: SharedMemory | None) -> list[InputTensor]:
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
        regions = _regions(tensor_params, f"input {_shown(name)}", shm)
        if regions is not None:
            if "data" in t or BINARY_DATA_SIZE in tensor_params:
                raise InvalidInput(f"input {_shown(name)} names a shared-memory region and also carries data: send it one way")
            out.append(InputTensor(name, datatype, shape, raw=regions.input_bytes(tensor_params, name, shape)))
            continue
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
    if isinstance(data, np.ndarray):  # read by json_tensors already
        return data
    if not isinstance(data, list):
        raise InvalidInput(
            f"input {_shown(name)} needs data, a list of numbers (flat or nested), or binary data "
            f"with parameters.{BINARY_DATA_SIZE}; got {_shown(data)}"
        )
    try:
        return np.array(data).ravel()
    except (TypeError, ValueError):  # nested lists of unequal lengths
        raise InvalidInput(f"input {_shown(name)}: data must be a list of numbers, flat or nested in lists of equal length") from None


def _outputs(items: Any, shm: SharedMemory | None) -> tuple[list[str], dict[str, bool], dict[str, Target]]:
    if items is None:
        return [], {}, {}
    if not isinstance(items, list):
        raise InvalidInput(f"'outputs' must be a list of {{\"name\": ...}} objects; got {_shown(items)}")
    names, binary, targets = [], {}, {}
    for i, o in enumerate(items):
        if not isinstance(o, dict) or not isinstance(o.get("name"), str):
            raise InvalidInput(f"outputs[{i}] must be a JSON object with a string name; got {_shown(o)}")
        name = o["name"]
        names.append(name)
        params = _object(o.get("parameters"), f"the parameters of output {_shown(name)}")
        if _regions(params, f"output {_shown(name)}", shm) is not None and (target := parse_target(params, name)) is not None:
            targets[name] = target
        if BINARY_DATA in params:
            binary[name] = flag(params[BINARY_DATA], f"output {_shown(name)}: parameter {BINARY_DATA}")
    return names, binary, targets


def _regions(params: dict[str, Any], what: str, shm: SharedMemory | None) -> SharedMemory | None:
    """`shm` when a tensor's parameters name a shared-memory region, None when they do not; InvalidInput when they do
    and this decoder was given no regions (never ignored: the client would look for the tensor where it is not)."""
    if SHM_REGION not in params and SHM_BYTE_SIZE not in params:
        return None
    if shm is None:
        raise InvalidInput(f"{what} names a shared-memory region; this endpoint takes none")
    return shm


def _object(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInput(f"{what} must be a JSON object; got {_shown(value)}")
    return value


def _shown(value: Any) -> str:
    """A client's value in an error message: bodies can be large."""
    # A tensor's name, quoted in labels made on every request before anything is wrong: a short string's repr is
    # reprlib's answer for it, at a tenth of the cost.
    if type(value) is str and len(value) <= _SHORT.maxstring and len(shown := repr(value)) <= _SHORT.maxstring:
        return shown
    return _SHORT.repr(value)
