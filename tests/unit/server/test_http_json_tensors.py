"""json_tensors reads an inference body as orjson reads it, each tensor's data as float32, whatever the nesting,
spacing and slicing; what it cannot read the ordinary way is refused or handed back, never misread."""

from __future__ import annotations

import json

import numpy as np
import orjson
import pytest

from zoo.server.http_api import json_tensors


def _ordinary(body: bytes) -> dict:
    doc = orjson.loads(body)
    for t in doc["inputs"]:
        if "data" in t:
            t["data"] = np.asarray(t["data"], dtype=np.float32).ravel()
    return doc


def _same(got: dict, want: dict) -> None:
    assert got.keys() == want.keys()
    for g, w in zip(got["inputs"], want["inputs"], strict=True):
        assert g.keys() == w.keys()
        for k in w:
            if k == "data":
                assert g[k].dtype == np.float32
                np.testing.assert_array_equal(g[k], w[k])
            else:
                assert g[k] == w[k]
    assert {k: v for k, v in got.items() if k != "inputs"} == {k: v for k, v in want.items() if k != "inputs"}


def _body(rows: int, features: int, *, nested: int = 2, indent: bool = False, seed: int = 0, ints: bool = False) -> bytes:
    rng = np.random.default_rng(seed)
    x = rng.integers(-300, 300, (rows, features)) if ints else rng.normal(0, 1e3, (rows, features)).astype(np.float32)
    data = x.ravel().tolist() if nested == 1 else x.tolist() if nested == 2 else [x.tolist()]
    shape = [rows, features] if nested < 3 else [1, rows, features]
    doc = {
        "id": 'say "data": [1, 2]',
        "data": "a top-level key that is no tensor's",
        "parameters": {"binary_data_output": False, "note": "]}\"data\":["},
        "inputs": [{"name": "input", "datatype": "FP32", "shape": shape, "data": data},
                   {"name": "other", "datatype": "FP32", "shape": [2], "data": [1.5, -2]}],
        "outputs": [{"name": "label"}],
    }
    return json.dumps(doc, indent=2 if indent else None).encode()


@pytest.mark.parametrize("nested", [1, 2, 3])
@pytest.mark.parametrize("indent", [False, True])
@pytest.mark.parametrize("ints", [False, True])
def test_reads_what_orjson_reads_cut_into_many_slices(monkeypatch, nested, indent, ints):
    monkeypatch.setattr(json_tensors, "SLICE_BYTES", 700)  # a few rows a slice: every cut is exercised
    body = _body(300, 7, nested=nested, indent=indent, ints=ints)
    _same(json_tensors.parse(body), _ordinary(body))


def test_a_shape_that_claims_more_or_fewer_values_keeps_every_value(monkeypatch):
    monkeypatch.setattr(json_tensors, "SLICE_BYTES", 500)
    for shape in ([3, 7], [1000, 7], [2**40], "nonsense"):
        doc = json.loads(_body(200, 7))
        doc["inputs"][0]["shape"] = shape
        got = json_tensors.parse(json.dumps(doc).encode())["inputs"][0]["data"]
        np.testing.assert_array_equal(got, np.asarray(doc["inputs"][0]["data"], np.float32).ravel())


@pytest.mark.parametrize(
    "data",
    ["[1, true]", '[1, "2"]', "[1, null]", "[[1, 2], [3, [4]]]", "[[1, 2], 3]", "[1, {}]"],
)
def test_data_that_is_not_numbers_is_refused(data):
    body = ('{"inputs": [{"name": "input", "datatype": "FP32", "shape": [2], "data": ' + data + "}]}").encode()
    with pytest.raises((ValueError, json_tensors.NotTensorData)):
        got = json_tensors.parse(body)
        pytest.fail(f"read as {got}")


def test_a_data_key_outside_inputs_is_handed_back():
    body = b'{"parameters": {"data": [1, 2]}, "inputs": [{"name": "input", "data": [1]}]}'
    with pytest.raises(json_tensors.NotTensorData):
        json_tensors.parse(body)


@pytest.mark.parametrize("body", [b'{"inputs": [{"data": [1, 2]]}', b'{"inputs": [{"data": [1 2]}]}', b'{"inputs": [{"data": [1,]}]}'])
def test_json_that_does_not_parse_is_an_error(body):
    with pytest.raises(ValueError):
        json_tensors.parse(body)
