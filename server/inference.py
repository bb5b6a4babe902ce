"""The request path's typed values and its first and last steps, on plain numpy; transports call these.

A transport decodes its message into `InputTensor`s and calls `make_call`, which checks them against the
model's card and gives one `InferenceCall` (rows, outputs, threshold); the batcher runs the rows; `finish`
turns the model's outputs into the `InferenceResult` the transport encodes. zoo.core.decision holds the semantics.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from zoo.core import decision
from zoo.core.contract import (
    INPUT_DATATYPE,
    INPUT_NAME,
    LABEL,
    MESSAGE_ENVELOPE_BYTES,
    NUMPY_DTYPES,
    ONE_HOT,
    OUTPUT_NAMES,
    PROBABILITIES,
    THRESHOLD_PARAM,
    ModelCard,
)
from zoo.server.errors import InvalidInput
from zoo.server.shm import Target

FP32 = NUMPY_DTYPES[INPUT_DATATYPE]  # the one input's dtype, as the contract states it


@dataclass(slots=True)
class InputTensor:
    """One input tensor as a transport received it, before it is checked against a model."""

    name: str
    datatype: str
    shape: Sequence[int]
    raw: bytes | memoryview | None = None  # little-endian bytes (gRPC raw contents, HTTP binary data, shared memory)
    values: Sequence[Any] | np.ndarray | None = None  # typed values (gRPC fp32_contents, JSON data), row-major


@dataclass(slots=True)
class InferRequest:
    """One inference request as a transport decoded it, whole, before the model is looked up: what the data plane
    takes from either transport."""

    model: str
    version: str  # '' for the model's default version
    inputs: list[InputTensor]
    outputs: list[str]  # names asked for, in order ([]: all)
    parameters: dict[str, Any]
    id: str = ""
    output_regions: dict[str, Target] = field(default_factory=dict)  # outputs to write to the client's shared memory
    max_answer_bytes: int = 0  # the largest answer the transport can send (0: no limit), checked before the model runs
    trace: dict[str, str] = field(default_factory=dict)  # the caller's W3C trace context (traceparent, tracestate)
    received_ns: int = 0  # time.time_ns() when the transport had the request (the trace's start)


@dataclass(slots=True)
class InferenceCall:
    """A checked request: what the batcher runs and what finish() needs to answer it."""

    rows: np.ndarray  # FP32 [N, F], C-contiguous
    outputs: tuple[str, ...]  # names to send, in the order asked
    threshold: float | list[float] | None  # per-request threshold (a list: one per class); None: the model's default
    request_id: str = ""


@dataclass(slots=True)
class InferenceResult:
    """The answer to one call: the requested outputs by name, in order."""

    model: str
    version: int
    request_id: str
    outputs: dict[str, np.ndarray]


def expected(card: ModelCard) -> str:
    """The input contract in words, used at the start of every input error."""
    names = card.feature_names
    shown = ", ".join(names[:8]) + (f", ... ({len(names)} in all)" if len(names) > 8 else "")
    return f"expected {card.input.datatype} [-1, {card.num_features}] ({shown})"


def _shape(shape: Sequence[int]) -> str:
    return "[" + ", ".join(str(int(d)) for d in shape) + "]"


def decode_rows(inputs: Sequence[InputTensor], card: ModelCard) -> np.ndarray:
    """The request's rows as a C-contiguous FP32 [N, F] array; raises InvalidInput saying what was wrong."""
    if len(inputs) != 1:
        names = [t.name for t in inputs]
        raise InvalidInput(f"{expected(card)} as one input named {INPUT_NAME!r}; got {len(names)} inputs {names}")
    tensor = inputs[0]
    if tensor.name != INPUT_NAME:
        raise InvalidInput(f"{expected(card)} as input {INPUT_NAME!r}; got input {tensor.name!r}")
    if tensor.datatype != card.input.datatype:
        raise InvalidInput(f"{expected(card)}; got datatype {tensor.datatype or '(none)'}: send float32 values")
    shape = tensor.shape
    f = card.num_features
    if len(shape) != 2 or shape[1] != f or shape[0] <= 0:
        raise InvalidInput(_shape_problem(card, list(shape)))
    n = shape[0]
    if tensor.raw is not None:
        need = n * f * 4
        if len(tensor.raw) != need:
            raise InvalidInput(f"{expected(card)}; shape {_shape(shape)} needs {need} bytes of FP32, got {len(tensor.raw)} bytes")
        x = np.frombuffer(tensor.raw, dtype=FP32).reshape(n, f)
    else:
        values = tensor.values if tensor.values is not None else ()
        if len(values) != n * f:
            raise InvalidInput(f"{expected(card)}; shape {_shape(shape)} needs {n * f} values, got {len(values)}")
        try:
            # An array of strings, booleans or objects (JSON data) would convert without complaint: refuse it here.
            if getattr(values, "dtype", FP32).kind not in "iuf":
                raise TypeError
            x = np.asarray(values, dtype=np.float32).reshape(n, f)
        except (TypeError, ValueError):
            raise InvalidInput(f"{expected(card)}; got values that are not numbers") from None
    check_finite(x, card)
    return x


def _shape_problem(card: ModelCard, shape: list[int]) -> str:
    """What is wrong with an input shape, in words."""
    want = expected(card)
    if len(shape) == 1 and shape[0] == card.num_features:
        return f"{want}; got {_shape(shape)}: add the batch dimension"
    if len(shape) == 2 and shape[1] == card.num_features:
        return f"{want}; got {_shape(shape)}: send at least one row"
    return f"{want}; got {_shape(shape)}"


def check_finite(x: np.ndarray, card: ModelCard) -> None:
    """InvalidInput naming the first row holding NaN or Inf."""
    # Large inputs: row sums (NaN and Inf propagate into them) cost half of isfinite() over every value (98 vs 180 us
    # at 1,024 x 784) and make no temporary mask. einsum, not x @ ones: BLAS would start threads that keep spinning
    # after the call, stealing the cores onnxruntime and the event loop need. A non-finite sum (bad input, or finite
    # values that overflow when added) is settled by the exact check below.
    if x.size >= 16384:
        with np.errstate(over="ignore", invalid="ignore"):  # an overflowing sum is expected, not news for the log
            sums = np.einsum("ij->i", x)
        if np.isfinite(sums).all():
            return
    if np.isfinite(x).all():
        return
    row, col = np.argwhere(~np.isfinite(x))[0]
    raise InvalidInput(f"row {row} holds {x[row, col]} in {card.feature_names[col]}: inputs must be finite numbers")


def parse_threshold(parameters: dict[str, Any], card: ModelCard | None = None) -> float | list[float] | None:
    """The per-request threshold from the request parameters, or None: a number, or (multilabel) one per class as a list
    or a comma-separated string; raises InvalidInput when a value is not in [0, 1] or the count is not the classes'."""
    if THRESHOLD_PARAM not in parameters:
        return None
    raw = parameters[THRESHOLD_PARAM]
    per_class = isinstance(raw, list) or (isinstance(raw, str) and "," in raw)
    if not per_class:
        return _unit(raw, raw)
    values = raw if isinstance(raw, list) else raw.split(",")
    thresholds = [_unit(v, raw) for v in values]
    if card is not None:
        c = card.num_classes
        if card.task != "multilabel":
            raise InvalidInput(
                f"parameter {THRESHOLD_PARAM} of this {card.task} model is one number in [0, 1]; got {len(thresholds)} values {raw!r}"
            )
        if len(thresholds) != c:
            raise InvalidInput(
                f"parameter {THRESHOLD_PARAM} needs one value per class ({c}: {', '.join(card.class_names)}) or one for all; "
                f"got {len(thresholds)} values {raw!r}"
            )
    return thresholds


def _unit(value: Any, raw: Any) -> float:
    """One threshold value as a float in [0, 1]; InvalidInput quoting the whole parameter otherwise."""
    problem = (
        f'parameter {THRESHOLD_PARAM} must be a number in [0, 1] (a double, or a string such as "0.7"), or one per class '
        f'(a list, or a string such as "0.1,0.9,0.5"); got {raw!r}'
    )
    if isinstance(value, bool) or value is None or isinstance(value, list | dict):
        raise InvalidInput(problem)
    try:
        t = float(value)
    except (TypeError, ValueError):
        raise InvalidInput(problem) from None
    if not math.isfinite(t) or not 0.0 <= t <= 1.0:
        raise InvalidInput(problem)
    return t


def select_outputs(requested: Sequence[str]) -> tuple[str, ...]:
    """The outputs to send, in request order (all when none requested); raises InvalidInput for unknown names."""
    if not requested:
        return OUTPUT_NAMES
    unknown = [n for n in requested if n not in OUTPUT_NAMES]
    if unknown:
        raise InvalidInput(f"unknown output {unknown[0]!r}: this model has outputs {', '.join(OUTPUT_NAMES)}")
    return tuple(dict.fromkeys(requested))  # a name asked twice is sent once


def make_call(
    card: ModelCard, inputs: Sequence[InputTensor], requested: Sequence[str], parameters: dict[str, Any], request_id: str = ""
) -> InferenceCall:
    """Step 1: a transport's decoded request, checked against the card."""
    return InferenceCall(decode_rows(inputs, card), select_outputs(requested), parse_threshold(parameters, card), request_id)


def call_for(card: ModelCard, request: InferRequest) -> InferenceCall:
    """Step 1: a decoded request checked against the card it asked for (and its answer against the transport's cap)."""
    call = make_call(card, request.inputs, request.outputs, request.parameters, request.id)
    if request.max_answer_bytes:
        check_answer_fits(call, card, request.max_answer_bytes, request.output_regions)
    return call


def answer_bytes(call: InferenceCall, card: ModelCard, in_shared_memory: Collection[str] = ()) -> int:
    """An upper bound of the answer's size, known from the row count before the model runs."""
    rows = len(call.rows)
    tensors = sum(
        rows * spec.dtype.itemsize * math.prod(spec.shape[1:])
        for spec in card.outputs
        if spec.name in call.outputs and spec.name not in in_shared_memory
    )
    return tensors + MESSAGE_ENVELOPE_BYTES + len(call.request_id)


def check_answer_fits(call: InferenceCall, card: ModelCard, limit: int, in_shared_memory: Collection[str] = ()) -> None:
    """InvalidInput, naming --max-message-bytes and the ways around it, when the answer could not be sent."""
    size = answer_bytes(call, card, in_shared_memory)
    if size > limit:
        raise InvalidInput(
            f"the response to {len(call.rows)} rows would take about {size} bytes, above this server's "
            f"--max-message-bytes of {limit}: send the rows in several requests (ModelStreamInfer pipelines them on one "
            "stream), ask only for the outputs you need, or have the outputs written to system shared memory"
        )


def finish(call: InferenceCall, outputs: dict[str, np.ndarray], card: ModelCard) -> dict[str, np.ndarray]:
    """Step 3: the requested outputs; one_hot and label are recomputed for a threshold other than the default."""
    p = outputs[PROBABILITIES]
    if not np.isfinite(p).all():
        rows = np.flatnonzero(~np.isfinite(p).all(axis=1))
        shown = ", ".join(map(str, rows[:10])) + (f" and {len(rows) - 10} more" if len(rows) > 10 else "")
        raise InvalidInput(
            f"row(s) {shown} overflow the model: its probabilities are not finite numbers; "
            f"send feature values in the range the model was trained on"
        )
    result = outputs
    t = call.threshold
    if t is not None and t != card.default_threshold and (ONE_HOT in call.outputs or LABEL in call.outputs):
        result = {PROBABILITIES: p, ONE_HOT: decision.one_hot(p, card.task, t), LABEL: decision.labels(p, card.task, t)}
    return {n: result[n] for n in call.outputs}
