"""Shared-memory reads before/after: 1,024-row mnist requests through system shared memory, side by side, medians.

    python bench/shm_bench.py                       # 5 rounds, 6 s per target each; prints a Markdown table
    python bench/shm_bench.py --rounds 1 --duration 2 --before 72c7630
    python bench/shm_bench.py --in-process --rounds 15     # the server's own work per request, no RPC
    python bench/shm_bench.py --zoo-flag=--no-monitoring   # the read alone (the before commit had no monitoring)

**before** = the server at --before (inputs are numpy views of a mapping of the client's object), built from git
into bench/out/shm-before; **after** = this checkout or --after COMMIT (pread/pwrite on the descriptor kept at registration). Both run
one process, 1 intra-op thread, --max-batch-size 1024, shared memory allowed; the load is perf_analyzer
--shared-memory system at C=4, 1,024 rows per request (input from the model's self-check rows). Each round runs both
targets back to back, alternating which goes first; the after ÷ before ratio is per round, then the median.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from serving import load, targets
from serving.runner import BenchConfig, prepare_models

BEFORE = "72c7630"  # the last commit that read shared memory through a mapping


def start_at(repository: Path, commit: str, name: str) -> targets.Target:
    """The server at `commit`, as serve_bench starts its before server, with shared memory allowed."""
    tree = targets.build_before(commit, targets.OUT / f"shm-{name}")
    cmd = [
        targets.PYTHON,
        "-m",
        "zoo.server",
        "--repository",
        str(repository.resolve()),
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--http-port",
        "-1",
        "--metrics-port",
        "-1",
        "--max-batch-size",
        "1024",
        "--intra-op-threads",
        "1",
        "--allow-shared-memory",
    ]
    return targets._launch(name, cmd, targets.ZOO_LINE, env=targets._env(PYTHONPATH=str(tree)), cwd=tree)


def in_process(onnx: str, card, rounds: int, calls: int = 50) -> None:
    """The server's own work per 1,024-row request, one process, no RPC: read the input (a view of a mapping before,
    pread on the kept descriptor after), the finite check, onnxruntime on 1 thread; interleaved, medians of rounds."""
    import mmap
    import os
    import time
    import uuid

    import numpy as np
    import onnxruntime as ort

    from zoo.server.inference import check_finite
    from zoo.server.shm import SharedMemory

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(onnx, opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    x = np.random.default_rng(0).normal(0, 1, (1024, card.num_features)).astype(np.float32)
    key = f"zoo-shm-bench-{uuid.uuid4().hex[:8]}"
    with open(f"/dev/shm/{key}", "wb") as f:
        f.write(x.tobytes())
    fd = os.open(f"/dev/shm/{key}", os.O_RDWR)
    mapping = mmap.mmap(fd, x.nbytes)
    os.close(fd)
    mem = SharedMemory(allowed=True)
    mem.register("r", "/" + key, 0, x.nbytes)
    params = {"shared_memory_region": "r", "shared_memory_byte_size": x.nbytes}

    def before() -> None:
        a = np.frombuffer(memoryview(mapping)[: x.nbytes], np.float32).reshape(x.shape)
        check_finite(a, card)
        sess.run(None, {name: a})

    def after() -> None:
        a = np.frombuffer(mem.input_bytes(params, "input", x.shape), np.float32).reshape(x.shape)  # type: ignore[arg-type]
        check_finite(a, card)
        sess.run(None, {name: a})

    def per_call_us(fn) -> float:
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        return (time.perf_counter() - t0) / calls * 1e6

    try:
        per_call_us(before), per_call_us(after)  # warm-up
        runs = [(per_call_us(before), per_call_us(after)) for _ in range(rounds)]
    finally:
        mem.unregister()
        mapping.close()
        os.unlink(f"/dev/shm/{key}")
    b, a = statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)
    ratios = [r[0] / r[1] for r in runs]
    print(f"| in process, {rounds} rounds of {calls} calls | before (mapping) | after (pread) | after ÷ before, rows/s |")
    print("|---|---|---|---|")
    print(f"| µs per 1,024-row request | {b:,.0f} | {a:,.0f} | **{statistics.median(ratios):.3f}** ({min(ratios):.3f}–{max(ratios):.3f}) |")
    print(f"| rows/s | {1024e6 / b:,.0f} | {1024e6 / a:,.0f} | |")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--duration", type=float, default=6.0, help="measured seconds per target and round")
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--before", default=BEFORE, help=f"the commit to compare with (default {BEFORE})")
    p.add_argument("--after", help="a commit to measure instead of this checkout (isolates one change: --before its parent)")
    p.add_argument("--zoo-flag", action="append", default=[], help="an extra flag for this checkout's server, e.g. --zoo-flag=--no-monitoring")
    p.add_argument("--in-process", action="store_true", help="only the server's own work per request, in this process")
    args = p.parse_args(argv)
    cfg = BenchConfig()
    prepare_models(["mnist"], cfg)
    model = cfg.models["mnist"]
    if args.in_process:
        from zoo.core import repository

        onnx = Path(model["onnx"])
        in_process(str(onnx), repository.read_card(cfg.repository, "mnist", int(onnx.parent.name)), args.rounds)
        return 0
    work = Path(tempfile.mkdtemp(prefix="shm-bench-"))
    data = load.input_data(work / "input.json", model["selfcheck"], model["features"])
    repo = Path(cfg.repository)
    runs: dict[str, list[dict]] = {"before": [], "after": []}
    try:
        after = start_at(repo, args.after, "after") if args.after else targets.start_zoo(repo, name="after", http=False, extra=tuple(args.zoo_flag))
        servers = {"before": start_at(repo, args.before, "before"), "after": after}
        for r in range(args.rounds):
            order = ["before", "after"] if r % 2 == 0 else ["after", "before"]
            for name in order:
                t = servers[name]
                out = load.perf_analyzer(
                    t.address,
                    "mnist",
                    data,
                    work / f"{name}.csv",
                    path="shm",
                    rows=1024,
                    concurrency=args.concurrency,
                    duration=args.duration,
                    warmup=args.warmup,
                    pids=t.pids(),
                )
                runs[name].append(out)
                print(
                    f"[shm-bench] round {r + 1} {name}: {out['rows_per_s']:,.0f} rows/s, p50 {out['p50_ms']:.2f} ms",
                    file=sys.stderr,
                    flush=True,
                )
    finally:
        targets.stop_all()
    ratios = [a["rows_per_s"] / b["rows_per_s"] for a, b in zip(runs["after"], runs["before"], strict=True)]
    print(f"| target | rows/s (median of {args.rounds}) | p50 ms | p99 ms | server cores | after ÷ before, rows/s |")
    print("|---|---|---|---|---|---|")
    for name in ("before", "after"):
        rs = runs[name]
        med = {k: statistics.median(x[k] for x in rs) for k in ("rows_per_s", "p50_ms", "p99_ms", "server_cpu_cores")}
        label = f"before ({args.before}, mapping)" if name == "before" else f"after ({args.after or 'this checkout'}, pread/pwrite)"
        ratio = f"**{statistics.median(ratios):.3f}** ({min(ratios):.3f}–{max(ratios):.3f})" if name == "after" else ""
        print(
            f"| {label} | {med['rows_per_s']:,.0f} | {med['p50_ms']:.2f} | {med['p99_ms']:.2f} | {med['server_cpu_cores']:.2f} | {ratio} |"
        )
    print(
        "\nper round, rows/s: "
        + "; ".join(f"{b['rows_per_s']:,.0f} -> {a['rows_per_s']:,.0f}" for a, b in zip(runs["after"], runs["before"], strict=True))
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
