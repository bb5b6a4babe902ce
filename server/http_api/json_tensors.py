"""A JSON inference body read with its tensors' `data` arrays decoded straight into float32, a slice at a time.

Read whole, a JSON array of numbers costs about 32 bytes of Python objects per number (a float and a list slot):
a 16 MB body of short numbers made 300 MB, and held the interpreter lock for a second. Here each `"data": [...]`
array is cut out of the body, the rest (names, shapes, parameters: small) is read by orjson, and each array is
decoded in slices of about 256 KB of text by msgspec (which checks every element is a number, and the nesting)
into a float32 array allocated once. Memory stays near the body plus the float32 values; between slices another
thread (the event loop) gets the interpreter lock.
"""

from __future__ import annotations

import math
import re
from typing import Any

import msgspec
import numpy as np
import orjson

SLICE_BYTES = 256 * 1024
_KEY = re.compile(rb'"data"\s*:\s*\[')
_SENTINEL = "\x00zoo-data-{}"  # a JSON string no client sends: where a cut-out array was
_DECODERS: dict[int, msgspec.json.Decoder] = {}


class NotTensorData(ValueError):
    """The body has `data` arrays that are not numbers, or where this reader does not look for them."""


def parse(body: bytes | bytearray | memoryview) -> Any:
    """The document, each inputs[i]["data"] a flat float32 array; orjson's or msgspec's error when not valid JSON;
    NotTensorData when the fast reading does not apply (the caller reads the body the ordinary way)."""
    view = memoryview(body)
    parts: list[bytes | bytearray] = []
    spans: list[tuple[int, int]] = []
    pos = copied = 0  # where the next search starts; how much of the text parts holds
    text = view.obj if isinstance(view.obj, bytes | bytearray) and len(view) == len(view.obj) else bytes(view)
    while (i := text.find(b'"data"', pos)) >= 0:  # from the end of each array on: its numbers are scanned once
        m = _KEY.match(text, i)
        if m is None:
            pos = i + 1
            continue
        start = m.end() - 1  # the array's [
        end = _array_end(text, start)
        parts.append(text[copied:start])
        parts.append(orjson.dumps(_SENTINEL.format(len(spans))))
        spans.append((start, end))
        pos = copied = end
    if not spans:
        return orjson.loads(view)
    parts.append(text[copied:])
    doc = orjson.loads(b"".join(parts))
    inputs = doc.get("inputs") if isinstance(doc, dict) else None
    found = 0
    for t in inputs if isinstance(inputs, list) else ():
        marker = t.get("data") if isinstance(t, dict) else None
        if isinstance(marker, str) and marker == _SENTINEL.format(found):
            start, end = spans[found]
            expected = _count(t.get("shape"))
            if expected is not None and expected > (end - start) // 2 + 1:  # more than the text can hold: no allocation
                expected = None
            t["data"] = numbers(text, start, end, expected)
            found += 1
    if found != len(spans):
        raise NotTensorData("a 'data' key outside inputs[i]")
    return doc


def numbers(text: bytes | bytearray, start: int, end: int, expected: int | None) -> np.ndarray:
    """The JSON array of numbers text[start:end], flat or nested, as one flat float32 array; ValueError when it is
    not one. `expected`: the count the shape claims (the array is allocated once at that size)."""
    depth = _depth(text, start)
    decoder = _decoder(depth)
    closer = b"]" * (depth - 1) if depth > 1 else b","
    out = np.empty(expected or 0, np.float32)
    extra: list[np.ndarray] = []  # values beyond the shape's count (the count check will refuse them)
    filled, a, n = 0, start + 1, end - 1  # inside the outer brackets: complete elements, separated by commas
    while a < n:
        b = n if n - a <= SLICE_BYTES else _cut(text, a + SLICE_BYTES, n, closer)
        try:
            values = np.array(decoder.decode(b"[" + text[a:b] + b"]"), dtype=np.float32).ravel()
        except (msgspec.DecodeError, ValueError) as e:
            raise ValueError(_plain(e)) from None
        room = max(0, min(values.size, out.size - filled))
        out[filled : filled + room] = values[:room]
        if room < values.size:
            extra.append(values[room:])
        filled += values.size
        a = b + 1  # past the comma between elements
    if filled < out.size:
        return out[:filled]
    return np.concatenate([out, *extra]) if extra else out


def _plain(e: Exception) -> str:
    """msgspec's message, in the words of this request: its paths ($[3]) are within a slice, not the body."""
    text = str(e).split(" - at ", 1)[0]
    return text.replace("Expected `float`, got", "expected a number, got").replace("Expected `array`, got", "expected a list, got")


def _depth(text: bytes | bytearray, start: int) -> int:
    """How deep the array at `start` nests: the brackets it opens with."""
    head = bytes(text[start : start + 256]).replace(b" ", b"").replace(b"\n", b"").replace(b"\t", b"").replace(b"\r", b"")
    return max(1, len(head) - len(head.lstrip(b"[")))


def _cut(text: bytes | bytearray, at: int, stop: int, closer: bytes) -> int:
    """The index of the comma after the element that ends at or after `at` (`stop` when none)."""
    i = text.find(closer, at, stop) if closer != b"," else at
    if i < 0:
        return stop
    comma = text.find(b",", i + (len(closer) if closer != b"," else 0), stop)
    return stop if comma < 0 else comma


def _decoder(depth: int) -> msgspec.json.Decoder:
    if depth not in _DECODERS:
        kind: Any = float
        for _ in range(depth - 1):
            kind = list[kind]
        _DECODERS[depth] = msgspec.json.Decoder(list[kind])
    return _DECODERS[depth]


def _array_end(text: bytes | bytearray, start: int) -> int:
    """One past the ] closing the array of numbers at `start`: numbers hold no braces or quotes, so it is the last ]
    before the first of them."""
    stop = len(text)
    for mark in (b"}", b'"'):
        i = text.find(mark, start)
        if i >= 0:
            stop = min(stop, i)
    end = text.rfind(b"]", start, stop)
    if end < 0:
        raise NotTensorData("an unclosed data array")
    return end + 1


def _count(shape: Any) -> int | None:
    if isinstance(shape, list) and shape and all(type(d) is int and 0 <= d for d in shape):
        n = math.prod(shape)
        return n if n <= 1 << 31 else None
    return None
