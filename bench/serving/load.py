"""Load generation: our grpc.aio load generator, Triton's perf_analyzer, in-process onnxruntime; one result dict each."""

from __future__ import annotations

import csv
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1]
PERF_ANALYZER = os.environ.get("PERF_ANALYZER", "/work/shared/tools/perf-analyzer")
CLK_TCK = os.sysconf("SC_CLK_TCK")
MARGIN_S = 120.0  # on top of the expected run time before a helper is killed
# perf_analyzer paths: (protocol, extra flags). Shared memory and streaming are gRPC; the HTTP paths pick the tensor format.
PATHS = {
    "grpc": ("grpc", []),
    "stream": ("grpc", ["--streaming"]),
    "shm": ("grpc", ["--shared-memory", "system"]),
    "http-json": ("http", ["--input-tensor-format", "json", "--output-tensor-format", "json"]),
    "http-binary": ("http", ["--input-tensor-format", "binary", "--output-tensor-format", "binary"]),
}


class LoadFailed(RuntimeError):
    """A load run that gave no usable numbers; the message says why."""


def cpu_s(pids: list[int]) -> float:
    """utime + stime of the given processes (all threads), in seconds; vanished ones count 0."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return total / CLK_TCK


def _run(cmd: list[str], timeout: float) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise LoadFailed(f"timed out after {timeout:.0f} s: {shlex.join(cmd)}") from None


def _json_lines(cmd: list[str], timeout: float) -> list[dict]:
    r = _run(cmd, timeout)
    if r.returncode != 0:
        raise LoadFailed(f"exit {r.returncode}: {_last_line(r.stderr or r.stdout)}")
    return [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no output"


def grpc_load(address: str, model: str, features: int, *, rows: int, concurrency: int, warmup: float, duration: float,
              pids: list[int]) -> dict:
    """Our closed-loop grpc.aio load generator (bench/_grpc_load.py), unary ModelInfer; server CPU over its window."""
    cmd = [sys.executable, str(BENCH / "_grpc_load.py"), "--address", address, "--model", model, "--features", str(features),
           "--rows", str(rows), "--concurrency", str(concurrency), "--warmup", str(warmup), "--duration", str(duration),
           "--server-pids", ",".join(map(str, pids))]
    out = _json_lines(cmd, warmup + duration + MARGIN_S)[0]
    if out["errors"]:
        raise LoadFailed(f"{out['errors']} failed requests, e.g. {out['first_errors'][0]}")
    return out


def input_data(path: Path, selfcheck_rows: list[list[float]], features: int) -> Path:
    """perf_analyzer's --input-data file: the model's self-check rows (its default random FP32 holds NaN/Inf)."""
    # With max_batch_size > 0 the shape leaves out the batch dimension; -b N sends N of these per request.
    doc = {"data": [{"input": {"content": [float(v) for v in row], "shape": [features]}} for row in selfcheck_rows]}
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def perf_analyzer(address: str, model: str, data: Path, csv_path: Path, *, path: str, rows: int, concurrency: int,
                  duration: float, warmup: float, pids: list[int]) -> dict:
    """perf_analyzer on one path at one concurrency: the mean of its last three windows of duration/3 each."""
    protocol, extra = PATHS[path]
    window_ms = max(500, int(duration * 1000 / 3))
    # Our rounds and medians do the statistics, so the stability bar is loose (-s 1000: the last three windows within
    # 11x of each other); up to 6 windows so that one stalled window (0 infer/s never counts as stable) is outlived.
    warm = max(concurrency * 2, int(warmup * (20 if rows > 1 else 1000)))
    cmd = [PERF_ANALYZER, "-m", model, "-u", address, "-i", protocol, "-b", str(rows),
           "--concurrency-range", f"{concurrency}:{concurrency}", "--input-data", str(data),
           "--measurement-interval", str(window_ms), "--stability-percentage", "1000", "--max-trials", "6",
           "--warmup-request-count", str(warm), "-f", str(csv_path), "-v", *extra]
    csv_path.unlink(missing_ok=True)
    c0, t0 = cpu_s(pids), time.monotonic()
    r = _run(cmd, 6 * window_ms / 1e3 + warmup * 5 + MARGIN_S)
    wall = time.monotonic() - t0
    server_cpu = cpu_s(pids) - c0
    said = (r.stdout + "\n" + r.stderr).splitlines()
    # Lines worth keeping even on success: perf_analyzer reports protocol trouble (e.g. failed unregisters) this way.
    notes = sorted({s.strip() for s in said if any(w in s.lower() for w in ("unable", "error", "fail", "warning"))})
    if r.returncode != 0 or not csv_path.exists():
        windows = ", ".join(s.split("throughput:")[1].split("infer/sec")[0].strip() for s in said if "Pass [" in s and "throughput:" in s)
        raise LoadFailed(f"perf_analyzer exit {r.returncode}: " + ("; ".join(notes)[:400] or _last_line(r.stdout + r.stderr))
                         + (f" (windows: {windows} infer/s)" if windows else ""))
    row = next(csv.DictReader(csv_path.open()))
    rows_per_s = float(row["Inferences/Second"])  # perf_analyzer counts inferences: rows, not requests
    return {
        "req_per_s": rows_per_s / rows, "rows_per_s": rows_per_s,
        "p50_ms": float(row["p50 latency"]) / 1e3, "p90_ms": float(row["p90 latency"]) / 1e3,
        "p99_ms": float(row["p99 latency"]) / 1e3, "mean_ms": _mean_ms(row),
        # Over the whole perf_analyzer process (warm-up and its windows), so an average, not the measured window's.
        "server_cpu_cores": server_cpu / wall if wall > 0 else None,
        "notes": notes, "command": shlex.join(cmd),
    }


def _mean_ms(row: dict) -> float | None:
    """perf_analyzer's CSV splits the mean latency into parts (µs); their sum is the client's mean."""
    parts = ("Client Send", "Network+Server Send/Recv", "Server Queue", "Server Compute Input", "Server Compute Infer",
             "Server Compute Output", "Client Recv")
    try:
        return sum(float(row[p]) for p in parts) / 1e3
    except (KeyError, ValueError):
        return None


def model_counts(address: str, model: str) -> tuple[int, int] | None:
    """(inference_count, execution_count) from ModelStatistics: rows served and model calls; None if not offered."""
    import grpc

    from zoo.proto import grpc_service_pb2 as pb
    from zoo.proto import grpc_service_pb2_grpc as pb_grpc

    try:
        with grpc.insecure_channel(address) as ch:
            resp = pb_grpc.GRPCInferenceServiceStub(ch).ModelStatistics(pb.ModelStatisticsRequest(name=model), timeout=5)
    except grpc.RpcError:
        return None  # the floor has no statistics
    stats = list(resp.model_stats)
    return (sum(s.inference_count for s in stats), sum(s.execution_count for s in stats)) if stats else None


def ort_limit(onnx: Path, *, rows: int, warmup: float, duration: float) -> dict:
    """In-process onnxruntime on one thread at `rows` rows per call (bench/_ort_limit.py): the ceiling, no RPC."""
    cmd = [sys.executable, str(BENCH / "_ort_limit.py"), str(onnx), "--rows", str(rows), "--warmup", str(warmup),
           "--duration", str(duration)]
    out = _json_lines(cmd, warmup + duration + MARGIN_S)[0]
    out["req_per_s"] = out["calls_per_s"]  # here a request is one sess.run call of `rows` rows
    return out
