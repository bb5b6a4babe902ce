"""Helpers of the server integration tests: copies of real exported versions, servers, request codecs."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from zoo.core import repository
from zoo.core.contract import OUTPUT_NAMES
from zoo.proto import grpc_service_pb2 as pb

STARTUP_S = 60


def copy_version(src_repo: Path, src_name: str, src_version: int, root: Path, name: str, version: int) -> Path:
    """Publish a copy of a real exported version as <root>/<name>/<version>/, atomically as the exporter does.

    Only metadata.json's name and version change; model.onnx keeps its bytes, so the recorded SHA-256 still holds.
    """
    src = repository.version_dir(src_repo, src_name, src_version)
    staging = root / name / f".staging-{version}-{os.getpid()}"
    staging.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src / repository.MODEL_FILE, staging / repository.MODEL_FILE)
    meta = json.loads((src / repository.METADATA_FILE).read_text(encoding="utf-8"))
    meta.update(name=name, version=version)
    (staging / repository.METADATA_FILE).write_text(json.dumps(meta), encoding="utf-8")
    final = repository.version_dir(root, name, version)
    os.rename(staging, final)  # the version appears complete or not at all
    return final


def rows_for(repo: Path, model: str, n: int, seed: int = 0, version: int | None = None) -> np.ndarray:
    """n plausible FP32 rows for a model: drawn around the training normalisation recorded at export."""
    card = repository.read_card(repo, model, version or repository.latest_version(repo, model))
    norm = card.extra.get("normalization") or {}
    mean = np.asarray(norm.get("mean") or [0.0] * card.num_features, dtype=np.float64)
    std = np.asarray(norm.get("std") or [1.0] * card.num_features, dtype=np.float64)
    z = np.random.default_rng(seed).normal(0, 1, (n, card.num_features))
    return (mean + std * z).astype(np.float32)


class ThreadServer:
    """A real zoo server on an ephemeral port, running its own event loop in a background thread."""

    def __init__(self, settings, registry_factory=None):
        from zoo.server.app import serve

        self.settings = settings
        self.registry_factory = registry_factory
        self.server = None
        self.error: BaseException | None = None
        self._started = threading.Event()
        self._serve = serve
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            asyncio.run(self._serve(self.settings, on_started=self._on_started, registry_factory=self.registry_factory))
        except BaseException as e:  # surfaced by start()
            self.error = e
            self._started.set()

    def _on_started(self, server) -> None:
        self.server = server
        self.loop = asyncio.get_running_loop()
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


def wait_until(predicate, what: str, timeout_s: float = 60.0, step_s: float = 0.01) -> None:
    """Poll `predicate` until it holds; fail naming `what` after timeout_s (a hang guard, never a race to win)."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(step_s)


def scrape(metrics_port: int) -> str:
    """The server's Prometheus exposition text."""
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as r:
        return r.read().decode()


def metric(text: str, name: str, **labels) -> float | None:
    """The value of one sample in Prometheus exposition text (None when absent)."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return None


class HeldModel:
    """A loaded model whose calls wait at a gate: requests queue behind it, whatever the machine's timing."""

    def __init__(self, srv: "ThreadServer", model: str):
        self.batcher = srv.server.registry.get(model).batcher
        self.entered, self.gate = threading.Event(), threading.Event()
        real = self.batcher.predict

        def gated(rows):
            self.entered.set()
            assert self.gate.wait(120), "the test never released the model"
            return real(rows)

        # On the model's thread, not the event loop: the loop must keep taking requests while the gate is shut.
        self.batcher.predict, self.batcher.inline_rows = gated, 0

    def __enter__(self) -> "HeldModel":
        return self

    def wait_held(self) -> None:
        """Block until a batch is inside the model, held."""
        wait_until(self.entered.is_set, "a batch to be held in the model")

    def release(self) -> None:
        self.gate.set()

    def __exit__(self, *exc) -> None:
        self.gate.set()


def settings_for(repo: Path, **overrides):
    from zoo.server.settings import ServerSettings

    values = dict(repository=str(repo), host="127.0.0.1", port=0, http_port=0, metrics_port=0, grace=5.0)
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
    names = list(OUTPUT_NAMES)
    return dict(zip(names, sess.run(names, {"input": np.asarray(x, dtype=np.float32)})))


def start_subprocess_server(repo: Path, *extra: str, env: dict | None = None, metrics: bool = False):
    """`python -m zoo.server` on port 0; returns (process, port, stderr lines so far[, metrics port]) once it listens."""
    cmd = [sys.executable, "-m", "zoo.server", "--repository", str(repo), "--host", "127.0.0.1", "--port", "0",
           "--metrics-port", "0" if metrics else "-1", "--http-port", "0", *extra]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})
    port, metrics_port, lines = wait_until_listening(proc)
    return (proc, port, lines, metrics_port) if metrics else (proc, port, lines)


def wait_until_listening(proc: subprocess.Popen, timeout_s: float = STARTUP_S) -> tuple[int, int | None, list[str]]:
    """(gRPC port, metrics port or None, stderr lines) once a zoo-server process logs 'listening'; then keeps
    collecting its stderr in the background. Kills it and raises RuntimeError if it never does."""
    lines: list[str] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        lines.append(line)
        if "zoo-server listening on" in line:
            port = int(line.split("listening on ")[1].split()[0].rsplit(":", 1)[1])
            shown = line.split("metrics port ", 1)[-1].split(",")[0].rstrip(")\n")
            metrics = int(shown) if shown.isdigit() else None  # "None" when the metrics endpoint is off
            threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True).start()
            return port, metrics, lines
    proc.kill()
    raise RuntimeError("server did not start:\n" + "".join(lines))
