"""JSON over HTTP: what a big body costs the server, and what JSON requests reach beside Triton.

Three measurements on bench/out/models/mnist (784 features; trained and exported by the serving bench if absent):
  memory      the server's peak resident memory above its idle level while it decodes one, then four, JSON bodies
              just under --max-json-bytes (sampled from /proc every 2 ms), as a multiple of the body
  latency     p50/p99 of 1-row gRPC requests (bench/_grpc_load.py, concurrency 4) alone, then while a client posts
              big JSON bodies back to back: the rise of p99 is what a big body costs everyone else
  throughput  perf_analyzer -i http, JSON tensors (and binary, for reference), 1 row, concurrency 16, zoo and
              Triton (triton-anchor) side by side, --input-data with the model's finite self-check rows

    python bench/json_bench.py [--only memory,latency,throughput] [--duration 10]

Prints one JSON object (and writes it to bench/out/json_bench-<time>.json).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.serving import load, targets  # noqa: E402
from bench.serving.runner import BenchConfig, prepare_models  # noqa: E402

MODEL = "mnist"
MB = 1024 * 1024


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def json_body(features: int, size: int, seed: int = 0) -> bytes:
    """A JSON inference request of about `size` bytes: rows of finite values as a JSON writer prints float32."""
    rng = np.random.default_rng(seed)
    row = json.dumps(rng.random(features).astype(np.float32).tolist()).encode()
    rows = max(1, size // (len(row) + 1) - 1)
    data = b"[" + b",".join([row] * rows) + b"]"
    head = json.dumps({"inputs": [{"name": "input", "datatype": "FP32", "shape": [rows, features], "data": 0}]}).encode()
    return head.replace(b'"data": 0', b'"data": ' + data)


def post(port: int, body: bytes) -> int:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/v2/models/{MODEL}/infer", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=300) as r:
        r.read()
        return r.status


def memory(zoo: targets.Target, features: int) -> dict:
    """Peak RSS above idle while 1 and 4 bodies just under 16 MB decode at once."""
    body = json_body(features, 16 * MB - 64 * 1024)
    out = {"body_mb": round(len(body) / MB, 1)}
    for n in (1, 4):
        pid = zoo.proc.pid
        base, peak, done = _rss(pid), [0], threading.Event()
        s = threading.Thread(target=_sample, args=(pid, peak, done))
        s.start()
        senders = [threading.Thread(target=post, args=(zoo.http_port, body)) for _ in range(n)]
        for t in senders:
            t.start()
        for t in senders:
            t.join()
        done.set()
        s.join()
        rise = peak[0] - base
        out[f"{n}_at_once"] = {"peak_rise_mb": round(rise / MB, 1), "x_body": round(rise / (n * len(body)), 2)}
    return out


def _sample(pid: int, peak: list[int], done: threading.Event) -> None:
    while not done.is_set():
        peak[0] = max(peak[0], _rss(pid))
        time.sleep(0.002)


def latency(zoo: targets.Target, features: int, duration: float) -> dict:
    """1-row gRPC p50/p99 alone and while big JSON bodies are posted back to back."""

    def run() -> dict:
        r = load.grpc_load(zoo.address, MODEL, features, rows=1, concurrency=4, warmup=1.0, duration=duration, pids=zoo.pids())
        return {"req_per_s": round(r["req_per_s"]), "p50_ms": round(r["p50_ms"], 2), "p99_ms": round(r["p99_ms"], 2)}

    alone = run()
    body, stop, posted = json_body(features, 16 * MB - 64 * 1024), threading.Event(), [0]

    def hammer() -> None:
        while not stop.is_set():
            post(zoo.http_port, body)
            posted[0] += 1

    h = threading.Thread(target=hammer)
    h.start()
    try:
        busy = run()
    finally:
        stop.set()
        h.join()
    return {
        "alone": alone,
        "with_big_json": {**busy, "big_bodies_decoded": posted[0]},
        "p99_rise_ms": round(busy["p99_ms"] - alone["p99_ms"], 2),
    }


def throughput(cfg: BenchConfig, zoo: targets.Target, duration: float, scratch: Path, rounds: int) -> dict:
    """perf_analyzer -i http at C=16, 1 row: JSON and binary tensors, zoo and Triton, in alternating order each round
    (a busy machine's drift falls on both); medians over the rounds."""
    m = cfg.models[MODEL]
    data = load.input_data(scratch / "input.json", m["selfcheck"], m["features"])
    try:
        triton = targets.start_triton(Path(m["onnx"]), MODEL, delay_us=cfg.triton_delay_us, max_batch=cfg.max_batch)
    except targets.StartFailed as e:
        return {"triton": f"did not start: {e}"}
    runs: dict[str, list[dict]] = {}
    try:
        for i in range(rounds):
            for path in ("http-json", "http-binary"):
                order = [("zoo", zoo), ("triton", triton)]
                for name, t in order if i % 2 == 0 else order[::-1]:
                    r = load.perf_analyzer(
                        t.http_address, MODEL, data, scratch / "pa.csv", path=path, rows=1, concurrency=16,
                        duration=duration, warmup=1.0, pids=t.pids(),
                    )  # fmt: skip
                    runs.setdefault(f"{path} {name}", []).append(r)
    finally:
        triton.stop()
    out: dict = {}
    for key, rs in runs.items():
        out[key] = {k: round(float(np.median([r[k] for r in rs])), 2) for k in ("req_per_s", "p50_ms", "p99_ms")}
        cpu = [r["server_cpu_cores"] * 1e6 / r["req_per_s"] for r in rs if r.get("server_cpu_cores")]
        out[key]["server_cpu_us_per_req"] = round(float(np.median(cpu))) if cpu else None  # less swayed by a busy box
    for path in ("http-json", "http-binary"):
        ratios = [z["req_per_s"] / t["req_per_s"] for z, t in zip(runs[f"{path} zoo"], runs[f"{path} triton"], strict=True)]
        out[f"{path} zoo/triton"] = {"median": round(float(np.median(ratios)), 2), "rounds": [round(r, 2) for r in ratios]}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="memory,latency,throughput")
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--rounds", type=int, default=3, help="throughput rounds (medians)")
    ap.add_argument("--zoo-flag", action="append", default=[], help="an extra zoo-server flag (repeat), e.g. --zoo-flag=--no-monitoring")
    args = ap.parse_args()
    cfg = BenchConfig()
    prepare_models([MODEL], cfg)
    features = cfg.models[MODEL]["features"]
    scratch = targets.OUT / "json_bench"
    scratch.mkdir(parents=True, exist_ok=True)
    zoo = targets.start_zoo(Path(cfg.repository), max_batch=cfg.max_batch, threads=cfg.threads, extra=tuple(args.zoo_flag))
    result: dict = {"model": MODEL, "features": features, "zoo_flags": args.zoo_flag}
    try:
        only = set(args.only.split(","))
        if "memory" in only:
            result["memory"] = memory(zoo, features)
        if "latency" in only:
            result["latency"] = latency(zoo, features, args.duration)
        if "throughput" in only:
            result["throughput"] = throughput(cfg, zoo, args.duration, scratch, args.rounds)
    finally:
        zoo.stop()
        targets.stop_all()
    text = json.dumps(result, indent=2)
    print(text)
    (targets.OUT / f"json_bench-{time.strftime('%Y%m%dT%H%M%S')}.json").write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
