"""The committed stubs are what protos/generate.py produces, and our messages match Triton's field numbers."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import in_ci

ROOT = Path(__file__).resolve().parents[3]


def test_committed_stubs_match_a_fresh_generation(tmp_path):
    pytest.importorskip("grpc_tools")
    spec = importlib.util.spec_from_file_location("zoo_protos_generate", ROOT / "protos" / "generate.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    fresh = gen.generate(tmp_path)
    assert fresh, "protoc produced nothing"
    for path in fresh:
        committed = ROOT / "zoo" / "proto" / path.name
        assert committed.read_bytes() == path.read_bytes(), f"{committed} is stale: run python protos/generate.py"


_DUMP = r"""
import json, sys
from google.protobuf import descriptor_pb2
mods = [__import__(m, fromlist=["x"]) for m in sys.argv[1:]]
out = {}
def walk(prefix, msgs):
    for m in msgs:
        out[prefix + m.name] = {f.name: [f.number, f.type, f.label, f.type_name.rsplit(".", 1)[-1]] for f in m.field}
        walk(prefix + m.name + ".", m.nested_type)
for mod in mods:
    fd = descriptor_pb2.FileDescriptorProto()
    mod.DESCRIPTOR.CopyToProto(fd)
    walk("", fd.message_type)
    for e in fd.enum_type:
        out["enum " + e.name] = {v.name: v.number for v in e.value}
    for s in fd.service:
        out["service " + fd.package + "." + s.name] = {m.name: [m.input_type, m.output_type, m.client_streaming, m.server_streaming] for m in s.method}
print(json.dumps(out))
"""


def _dump(*modules: str) -> dict:
    # Separate processes: both sets of messages live in package `inference`, and one process's
    # descriptor pool refuses the second copy.
    res = subprocess.run([sys.executable, "-c", _DUMP, *modules], capture_output=True, text=True, check=True)
    return json.loads(res.stdout)


# The Open Inference Protocol's current .proto has these; Triton's stubs do not (their clients skip the field).
OIP_ONLY = {"ModelMetadataResponse.properties", "ModelMetadataResponse.PropertiesEntry"}


def test_the_oip_only_fields_are_what_the_open_inference_protocol_gives():
    ours = _dump("zoo.proto.grpc_service_pb2")
    assert ours["ModelMetadataResponse"]["properties"] == [6, 11, 3, "PropertiesEntry"]  # map<string, string> properties = 6
    assert ours["ModelMetadataResponse.PropertiesEntry"] == {"key": [1, 9, 1, ""], "value": [2, 9, 1, ""]}


def test_every_message_and_rpc_matches_tritonclient():
    if importlib.util.find_spec("tritonclient") is None:  # not importorskip: it would import it here
        pytest.skip("tritonclient is not installed")
    ours = _dump("zoo.proto.model_config_pb2", "zoo.proto.grpc_service_pb2")
    theirs = _dump("tritonclient.grpc.model_config_pb2", "tritonclient.grpc.service_pb2")
    assert len(ours) > 30
    for key, fields in ours.items():
        if key in OIP_ONLY:
            continue
        assert key in theirs, f"{key} is not in Triton's protocol"
        for name, spec in fields.items():
            if f"{key}.{name}" in OIP_ONLY:
                continue
            assert name in theirs[key], f"{key}.{name} is not in Triton's protocol"
            assert spec == theirs[key][name], f"{key}.{name}: ours {spec}, Triton's {theirs[key][name]}"


_IMPORTS = r"""
import importlib, sys
for name in sys.argv[1:]:
    importlib.import_module(name)
from zoo.proto import grpc_service_pb2 as pb
req = pb.ModelInferRequest(model_name="iris", id="7")
req.inputs.add(name="input", datatype="FP32", shape=[1, 4])
if "tritonclient.grpc" in sys.modules:  # the same bytes mean the same message to a stock client
    from tritonclient.grpc import service_pb2 as theirs
    again = theirs.ModelInferRequest.FromString(req.SerializeToString())
    assert (again.model_name, again.id, list(again.inputs[0].shape)) == ("iris", "7", [1, 4])
print("ok")
"""


@pytest.mark.parametrize("order", [
    ["zoo.client", "zoo.server.app", "tritonclient.grpc"],
    ["tritonclient.grpc", "zoo.client", "zoo.server.app"],
    ["zoo.client", "zoo.server.app", "kserve"],
    ["kserve", "zoo.client", "zoo.server.app"],
])
def test_zoo_imports_beside_stock_clients_in_one_process(order):
    # zoo's descriptors live in a private pool; tritonclient's and KServe's use the default one. (Those two
    # cannot share a process with each other: both put package `inference` in the default pool.)
    for module in order:
        if not module.startswith("zoo") and importlib.util.find_spec(module.split(".")[0]) is None:
            if in_ci():
                pytest.fail(f"{module} is not installed: CI installs the interop extra (pip install -e '.[dev,interop]')")
            pytest.skip(f"{module} is not installed: pip install -e '.[dev,interop]' (CI does)")
    res = subprocess.run([sys.executable, "-c", _IMPORTS, *order], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr[-2000:]
