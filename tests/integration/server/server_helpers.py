"""Helpers of the server integration tests: fixture models built with onnx.helper, servers, request codecs."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from zoo import repository
from zoo.proto import grpc_service_pb2 as pb

IRIS_FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
IRIS_CLASSES = ["setosa", "versicolor", "virginica"]
STARTUP_S = 60


def build_onnx(task: str, n_features: int, n_classes: int, threshold: float, seed: int) -> bytes:
    """A small MLP-shaped graph honouring the model contract: raw input -> normalise -> Gemm -> probabilities, one_hot, label."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    mean = rng.normal(0, 1, n_features).astype(np.float32)
    std = rng.uniform(0.5, 2, n_features).astype(np.float32)
    width = 1 if task == "binary" else n_classes
    w = rng.normal(0, 1, (n_features, width)).astype(np.float32)
    b = rng.normal(0, 0.1, width).astype(np.float32)
    inits = [
        numpy_helper.from_array(mean, "mean"),
        numpy_helper.from_array(std, "std"),
        numpy_helper.from_array(w, "W"),
        numpy_helper.from_array(b, "B"),
        numpy_helper.from_array(np.array(threshold, dtype=np.float32), "t"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1"),
        numpy_helper.from_array(np.array(1.0, dtype=np.float32), "one"),
        numpy_helper.from_array(np.array(-1, dtype=np.int64), "minus1"),
    ]
    nodes = [
        helper.make_node("Sub", ["input", "mean"], ["centred"]),
        helper.make_node("Div", ["centred", "std"], ["scaled"]),
        helper.make_node("Gemm", ["scaled", "W", "B"], ["logits"]),
    ]
    if task == "binary":
        nodes += [
            helper.make_node("Sigmoid", ["logits"], ["p1"]),
            helper.make_node("Sub", ["one", "p1"], ["p0"]),
            helper.make_node("Concat", ["p0", "p1"], ["probabilities"], axis=1),
            helper.make_node("GreaterOrEqual", ["p1", "t"], ["pos"]),
            helper.make_node("Not", ["pos"], ["neg"]),
            helper.make_node("Concat", ["neg", "pos"], ["oh_bool"], axis=1),
            helper.make_node("Cast", ["oh_bool"], ["one_hot"], to=TensorProto.FLOAT),
            helper.make_node("Squeeze", ["pos", "axis1"], ["pos1"]),
            helper.make_node("Cast", ["pos1"], ["label"], to=TensorProto.INT64),
        ]
    else:
        nodes += [
            helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
            helper.make_node("ArgMax", ["probabilities"], ["k"], axis=1, keepdims=0),
            helper.make_node("ReduceMax", ["probabilities", "axis1"], ["top"], keepdims=1),
            helper.make_node("GreaterOrEqual", ["top", "t"], ["set"]),
            helper.make_node("Equal", ["probabilities", "top"], ["is_top"]),
            helper.make_node("And", ["is_top", "set"], ["oh_bool"]),
            helper.make_node("Cast", ["oh_bool"], ["one_hot"], to=TensorProto.FLOAT),
            helper.make_node("Squeeze", ["set", "axis1"], ["set1"]),
            helper.make_node("Where", ["set1", "k", "minus1"], ["label"]),
        ]
    graph = helper.make_graph(
        nodes,
        "fixture",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", n_features])],
        [
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", n_classes]),
            helper.make_tensor_value_info("one_hot", TensorProto.FLOAT, ["N", n_classes]),
            helper.make_tensor_value_info("label", TensorProto.INT64, ["N"]),
        ],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=9)
    onnx.checker.check_model(model)
    return model.SerializeToString()


def write_version(
    root: Path,
    name: str,
    version: int,
    *,
    task: str = "multiclass",
    feature_names: list[str] | None = None,
    class_names: list[str] | None = None,
    threshold: float | None = None,
    seed: int = 0,
) -> Path:
    """Write <root>/<name>/<version>/ (model.onnx + metadata.json) atomically, as the exporter does."""
    import onnxruntime as ort

    from zoo import decision

    feature_names = feature_names or IRIS_FEATURES
    class_names = class_names or (["negative", "positive"] if task == "binary" else IRIS_CLASSES)
    threshold = decision.default_threshold(task) if threshold is None else threshold
    data = build_onnx(task, len(feature_names), len(class_names), threshold, seed)
    staging = root / name / f".staging-{version}-{os.getpid()}"
    staging.mkdir(parents=True, exist_ok=True)
    (staging / repository.MODEL_FILE).write_bytes(data)
    rows = np.random.default_rng(seed + 1).normal(0, 2, (8, len(feature_names))).astype(np.float32)
    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    probs = sess.run(["probabilities"], {"input": rows})[0]
    meta = {
        "name": name,
        "version": version,
        "task": task,
        "feature_names": feature_names,
        "class_names": class_names,
        "default_threshold": threshold,
        "model_sha256": repository.sha256_file(staging / repository.MODEL_FILE),
        "selfcheck": {"inputs": rows.tolist(), "probabilities": probs.tolist()},
        "opset": 18,
    }
    (staging / repository.METADATA_FILE).write_text(json.dumps(meta), encoding="utf-8")
    final = repository.version_dir(root, name, version)
    os.rename(staging, final)  # the version appears complete or not at all
    return final


class ThreadServer:
    """A real zoo server on an ephemeral port, running its own event loop in a background thread."""

    def __init__(self, settings):
        from zoo.server.app import serve

        self.settings = settings
        self.server = None
        self.error: BaseException | None = None
        self._started = threading.Event()
        self._serve = serve
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            asyncio.run(self._serve(self.settings, on_started=self._on_started))
        except BaseException as e:  # surfaced by start()
            self.error = e
            self._started.set()

    def _on_started(self, server) -> None:
        self.server = server
        self._started.set()

    def start(self) -> "ThreadServer":
        self.thread.start()
        if not self._started.wait(STARTUP_S) or self.error is not None:
            raise RuntimeError(f"server did not start: {self.error!r}")
        return self

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
        self.thread.join(30)


def settings_for(repo: Path, **overrides):
    from zoo.server.settings import ServerSettings

    values = dict(repository=str(repo), host="127.0.0.1", port=0, metrics_port=0, grace_s=5.0)
    values.update(overrides)
    return ServerSettings(**values)


def infer_request(model: str, x: np.ndarray, *, version: str = "", outputs=(), threshold=None) -> pb.ModelInferRequest:
    """A ModelInferRequest carrying x as raw FP32 bytes."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    req = pb.ModelInferRequest(model_name=model, model_version=version)
    req.inputs.add(name="input", datatype="FP32", shape=list(x.shape))
    req.raw_input_contents.append(x.tobytes())
    for name in outputs:
        req.outputs.add(name=name)
    if threshold is not None:
        req.parameters["threshold"].double_param = threshold
    return req


def decode_response(resp: pb.ModelInferResponse) -> dict[str, np.ndarray]:
    """The response's outputs as numpy arrays."""
    dtypes = {"FP32": np.float32, "INT64": np.int64}
    return {
        o.name: np.frombuffer(raw, dtype=dtypes[o.datatype]).reshape(list(o.shape))
        for o, raw in zip(resp.outputs, resp.raw_output_contents)
    }


def reference(repo: Path, model: str, version: int, x: np.ndarray) -> dict[str, np.ndarray]:
    """In-process onnxruntime on the same model file, for comparison."""
    import onnxruntime as ort

    path = repository.version_dir(repo, model, version) / repository.MODEL_FILE
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = list(repository.OUTPUT_NAMES)
    return dict(zip(names, sess.run(names, {"input": np.asarray(x, dtype=np.float32)})))


def start_subprocess_server(repo: Path, *extra: str, env: dict | None = None) -> tuple[subprocess.Popen, int, list[str]]:
    """`python -m zoo.server` on port 0; returns (process, port, stderr lines so far) once it logs 'listening'."""
    cmd = [sys.executable, "-m", "zoo.server", "--repository", str(repo), "--host", "127.0.0.1", "--port", "0", "--metrics-port", "-1", *extra]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})
    lines: list[str] = []
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        lines.append(line)
        if "zoo-server listening on" in line:
            port = int(line.split("listening on ")[1].split()[0].rsplit(":", 1)[1])
            threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True).start()
            return proc, port, lines
    proc.kill()
    raise RuntimeError("server did not start:\n" + "".join(lines))
