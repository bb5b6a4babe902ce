"""Closed-loop gRPC load generator for KServe v2 ModelInfer: C tasks on one grpc.aio channel, one process.

Run as a subprocess by serve_bench.py (so its CPU is measured apart from the driver); prints one JSON object.
The request is serialized once and sent as raw bytes; responses are not parsed (after one checked warm-up call),
so the client spends its CPU on gRPC alone. Server CPU is read from /proc for --server-pids over the same window.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import resource
import sys
import time

import grpc
import numpy as np

from zoo.proto import grpc_service_pb2 as pb

METHOD = "/inference.GRPCInferenceService/ModelInfer"
MAX_MESSAGE = 64 * 1024 * 1024
CLK_TCK = os.sysconf("SC_CLK_TCK")


def request_bytes(model: str, rows: int, features: int, seed: int = 0) -> bytes:
    """One serialized ModelInferRequest carrying `rows` finite FP32 rows as raw_input_contents."""
    x = np.random.default_rng(seed).normal(0, 1, (rows, features)).astype("<f4")
    req = pb.ModelInferRequest(model_name=model)
    req.inputs.add(name="input", datatype="FP32", shape=[rows, features])
    req.raw_input_contents.append(x.tobytes())
    return req.SerializeToString()


def proc_cpu_s(pids: list[int]) -> float:
    """utime + stime (all threads) of the given processes, in seconds; vanished processes count 0."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
        except (FileNotFoundError, ProcessLookupError, IndexError):
            pass
    return total / CLK_TCK


def self_cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def percentile(sorted_ms: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (q in 0..100)."""
    if not sorted_ms:
        return float("nan")
    k = max(0, min(len(sorted_ms) - 1, math.ceil(q / 100 * len(sorted_ms)) - 1))
    return sorted_ms[k]


async def run(args: argparse.Namespace) -> dict:
    payload = request_bytes(args.model, args.rows, args.features)
    opts = [("grpc.max_send_message_length", MAX_MESSAGE), ("grpc.max_receive_message_length", MAX_MESSAGE)]
    async with grpc.aio.insecure_channel(args.address, options=opts) as channel:
        infer = channel.unary_unary(METHOD)  # no (de)serializers: bytes in, bytes out
        first = pb.ModelInferResponse.FromString(await infer(payload, timeout=30))
        shapes = {o.name: list(o.shape) for o in first.outputs}
        if not shapes or any(s[0] != args.rows for s in shapes.values()):
            raise RuntimeError(f"unexpected response outputs {shapes} for {args.rows} rows")

        loop = asyncio.get_running_loop()
        t_start = loop.time() + args.warmup
        t_end = t_start + args.duration
        lat_ns: list[int] = []
        errors: list[str] = []
        marks: dict[str, float] = {}

        async def worker() -> None:
            while True:
                t0 = time.perf_counter_ns()
                now = loop.time()
                if now >= t_end:
                    return
                try:
                    await infer(payload, timeout=30)
                except grpc.aio.AioRpcError as e:
                    errors.append(f"{e.code().name}: {e.details()}")
                    if len(errors) > 100:
                        return
                    continue
                if now >= t_start and loop.time() <= t_end:
                    lat_ns.append(time.perf_counter_ns() - t0)

        async def sampler() -> None:
            await asyncio.sleep(max(0.0, t_start - loop.time()))
            marks.update(t0=loop.time(), c0=self_cpu_s(), s0=proc_cpu_s(args.server_pids))
            await asyncio.sleep(max(0.0, t_end - loop.time()))
            marks.update(t1=loop.time(), c1=self_cpu_s(), s1=proc_cpu_s(args.server_pids))

        await asyncio.gather(sampler(), *(worker() for _ in range(args.concurrency)))

    window = marks["t1"] - marks["t0"]
    ms = sorted(v / 1e6 for v in lat_ns)
    n = len(ms)
    return {
        "requests": n,
        "errors": len(errors),
        "first_errors": errors[:3],
        "window_s": window,
        "req_per_s": n / window,
        "rows_per_s": n * args.rows / window,
        "p50_ms": percentile(ms, 50),
        "p90_ms": percentile(ms, 90),
        "p99_ms": percentile(ms, 99),
        "mean_ms": sum(ms) / n if n else float("nan"),
        "client_cpu_cores": (marks["c1"] - marks["c0"]) / window,
        "server_cpu_cores": (marks["s1"] - marks["s0"]) / window if args.server_pids else None,
        "server_cpu_us_per_req": (marks["s1"] - marks["s0"]) / n * 1e6 if args.server_pids and n else None,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--address", required=True, help="host:port of the gRPC server")
    p.add_argument("--model", required=True)
    p.add_argument("--features", type=int, required=True, help="input width of the model")
    p.add_argument("--rows", type=int, default=1, help="rows per request (default 1)")
    p.add_argument("--concurrency", type=int, default=1, help="requests in flight (default 1)")
    p.add_argument("--warmup", type=float, default=1.0, help="seconds of load before measuring (default 1)")
    p.add_argument("--duration", type=float, default=5.0, help="seconds measured (default 5)")
    p.add_argument("--server-pids", type=lambda s: [int(x) for x in s.split(",") if x], default=[], help="pids whose CPU to read")
    args = p.parse_args(argv)
    json.dump(asyncio.run(run(args)), sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
