"""The cost of live monitoring: 1-row unary requests at C=16, monitoring on (the default) against --no-monitoring.

    python bench/monitor_bench.py                     # iris and mnist, 5 rounds, 5 s per target each
    python bench/monitor_bench.py --models mnist --rounds 3
    python bench/monitor_bench.py --models mnist --shm --rows 1024 --concurrency 4   # batch traffic, shared memory

Both targets are this checkout, one process, 1 intra-op thread; the load is bench/_grpc_load.py (closed loop, one
grpc.aio channel). Each round starts both servers afresh and measures them back to back, alternating which goes
first; on ÷ off is per round, then the median. Fresh servers each round, because one server process kept for the
whole run carries its own luck through every round: the same code measured 0.70x in one run and 1.26x in the next.
The models are exported by this checkout, so they carry the training reference monitoring bins against (an older
export without one would make monitoring look cheaper than it is: the bench refuses it).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

from serving import load, targets
from serving.runner import BenchConfig, prepare_models

from zoo.core import reference, repository


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="iris,mnist")
    p.add_argument("--rows", type=int, default=1, help="rows per request")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--duration", type=float, default=5.0)
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--shm", action="store_true", help="perf_analyzer --shared-memory system instead of bench/_grpc_load.py")
    args = p.parse_args(argv)
    cfg = BenchConfig()
    names = args.models.split(",")
    prepare_models(names, cfg)
    for name in names:
        onnx = Path(cfg.models[name]["onnx"])
        card = repository.read_card(cfg.repository, name, int(onnx.parent.name))
        if reference.KEY not in card.extra:
            sys.exit(f"{onnx.parent}: exported without a training reference; delete {cfg.repository}/{name} to re-export it")
    repo = Path(cfg.repository)
    results: dict[str, dict[str, list[dict]]] = {n: {"on": [], "off": []} for n in names}
    try:
        for r in range(args.rounds):
            targets.stop_all()
            servers = {
                "on": targets.start_zoo(repo, name="monitoring-on", http=False),
                "off": targets.start_zoo(repo, name="monitoring-off", http=False, extra=("--no-monitoring",)),
            }
            for name in names:
                for which in (["on", "off"] if r % 2 == 0 else ["off", "on"]):
                    t = servers[which]
                    out = _measure(args, cfg, t, name)
                    results[name][which].append(out)
                    print(f"[monitor-bench] round {r + 1} {name} {which}: {out['req_per_s']:,.0f} req/s", file=sys.stderr, flush=True)
    finally:
        targets.stop_all()
    print(f"| model | monitoring off, req/s | on, req/s | on ÷ off (median of {args.rounds}, range) | server CPU per request, off → on |")
    print("|---|---|---|---|---|")
    for name in names:
        on, off = results[name]["on"], results[name]["off"]
        ratios = [a["req_per_s"] / b["req_per_s"] for a, b in zip(on, off, strict=True)]
        cpu = {k: statistics.median(x["server_cpu_cores"] * 1e6 / x["req_per_s"] for x in v) for k, v in (("on", on), ("off", off))}
        print(
            f"| {name} | {statistics.median(x['req_per_s'] for x in off):,.0f} | {statistics.median(x['req_per_s'] for x in on):,.0f} | "
            f"**{statistics.median(ratios):.3f}** ({min(ratios):.3f}–{max(ratios):.3f}) | {cpu['off']:.0f} → {cpu['on']:.0f} µs |"
        )
    return 0


def _measure(args: argparse.Namespace, cfg: BenchConfig, t: targets.Target, name: str) -> dict:
    """One measured window on one target: req_per_s and server_cpu_cores."""
    m = cfg.models[name]
    if args.shm:  # the model's own finite self-check rows as input (perf_analyzer's random data holds NaN/Inf)
        data = load.input_data(Path(cfg.runs) / f"monitor-{name}.json", m["selfcheck"], m["features"])
        return load.perf_analyzer(
            t.address, name, data, Path(cfg.runs) / "monitor-pa.csv", path="shm", rows=args.rows,
            concurrency=args.concurrency, duration=args.duration, warmup=args.warmup, pids=t.pids(),
        )  # fmt: skip
    return load.grpc_load(
        t.address, name, m["features"], rows=args.rows, concurrency=args.concurrency, warmup=args.warmup,
        duration=args.duration, pids=t.pids(),
    )  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
