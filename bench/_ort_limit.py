"""In-process onnxruntime on one thread, the limit a server can approach: sess.run on N-row batches in a loop.

Run as a subprocess by serve_bench.py; prints one JSON object per --rows value.
Session options match the servers': intra_op 1, inter_op 1, CPU provider, all three outputs fetched.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import sys
import time

import numpy as np
import onnxruntime as ort


def session(path: str) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(path, sess_options=opts, providers=["CPUExecutionProvider"])


def measure(sess: ort.InferenceSession, rows: int, warmup: float, duration: float) -> dict:
    """Calls/s, rows/s and per-call latency percentiles of sess.run on a `rows`-row batch."""
    width = sess.get_inputs()[0].shape[-1]
    x = np.random.default_rng(0).normal(0, 1, (rows, width)).astype(np.float32)
    names = [o.name for o in sess.get_outputs()]
    feed = {sess.get_inputs()[0].name: x}
    end = time.perf_counter() + warmup
    while time.perf_counter() < end:
        sess.run(names, feed)
    lat: list[float] = []
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    end = t0 + duration
    now = t0
    while now < end:
        sess.run(names, feed)
        after = time.perf_counter()
        lat.append(after - now)
        now = after
    window = now - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    ms = sorted(v * 1e3 for v in lat)
    pick = lambda q: ms[max(0, math.ceil(q / 100 * len(ms)) - 1)]  # nearest rank
    n = len(ms)
    return {
        "rows": rows,
        "calls": n,
        "window_s": window,
        "req_per_s": n * rows / window,  # a C-row call stands for C one-row requests batched perfectly
        "rows_per_s": n * rows / window,
        "calls_per_s": n / window,
        "p50_ms": pick(50),
        "p90_ms": pick(90),
        "p99_ms": pick(99),
        "mean_ms": sum(ms) / n,
        "cpu_cores": (r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime) / window,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", help="path of model.onnx")
    p.add_argument("--rows", type=lambda s: [int(x) for x in s.split(",")], default=[1], help="batch sizes, e.g. 1,4,16,1024")
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--duration", type=float, default=5.0)
    args = p.parse_args(argv)
    sess = session(args.model)
    for rows in args.rows:
        print(json.dumps(measure(sess, rows, args.warmup, args.duration)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
