"""Serving benchmark: every goal (B S M U L W F H N) side by side in one run, medians of rounds; rewrites `## Serving`.

    python bench/serve_bench.py                          # full run: every family, 3 rounds, 5 s per case and target
    python bench/serve_bench.py --quick --only F --skip-triton --rounds 1 --out /tmp/R.md   # smoke run
    python bench/serve_bench.py --render bench/out/serve_bench-XXXX.json --out /tmp/R.md   # re-render saved numbers

Families: B batcher before/after, S streaming, M shared memory, U workers, L latency at C=1, W wide MLP,
F CPU per request vs the grpc.aio floor, H HTTP, N GPU (not measured here). Modules: bench/serving/ (targets: server
control; load: load generators; plan: the cases; runner: the rounds; report: the Markdown section).
"""

from __future__ import annotations

import argparse
import atexit
import datetime as dt
import json
import os
import platform
import shlex
import signal
import sys
import time
from dataclasses import asdict
from pathlib import Path

from serving import report, targets
from serving.plan import FAMILIES, models, plan
from serving.runner import BenchConfig, Pool, prepare_models, run_rounds

BENCH = Path(__file__).resolve().parent


def machine() -> dict:
    """CPU model, cores, load at start and the versions that matter."""
    import aiohttp
    import google.protobuf
    import grpc
    import numpy
    import onnxruntime

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "unknown")
    return {"cpu": cpu, "cores": os.cpu_count(), "load_avg_1m": os.getloadavg()[0], "kernel": platform.release(),
            "python": platform.python_version(), "onnxruntime": onnxruntime.__version__, "grpcio": grpc.__version__,
            "protobuf": google.protobuf.__version__, "numpy": numpy.__version__, "aiohttp": aiohttp.__version__,
            "gpu": Path("/dev/nvidia0").exists()}


def parse(argv: list[str] | None) -> tuple[BenchConfig, argparse.Namespace]:
    d = BenchConfig()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n".join(__doc__.splitlines()[1:]))
    p.add_argument("--only", default=",".join(FAMILIES), help=f"case families, comma-separated (default all: {','.join(FAMILIES)})")
    p.add_argument("--rounds", type=int, help=f"rounds; values are medians over them (default {d.rounds}, --quick 1)")
    p.add_argument("--duration", type=float, help=f"measured seconds per case and target (default {d.duration}, --quick 1)")
    p.add_argument("--warmup", type=float, help=f"warm-up seconds before each window (default {d.warmup}, --quick 0.3)")
    p.add_argument("--quick", action="store_true", help="smoke run: short windows, 1 round (its numbers are not results)")
    p.add_argument("--skip-triton", action="store_true", help="leave Triton out (its rows and goals say so)")
    p.add_argument("--before-delay-us", type=int, default=d.before_delay_us,
                   help=f"the before server's max queue delay (default {d.before_delay_us})")
    p.add_argument("--repository", default=d.repository,
                   help="model repository; a missing model is trained and exported into it (default bench/out/models)")
    p.add_argument("--out", default=str(BENCH / "RESULTS.md"),
                   help="Markdown file whose `## Serving` section is rewritten, others kept (default bench/RESULTS.md)")
    p.add_argument("--raw-dir", default=str(targets.OUT), help="where the raw JSON goes (default bench/out)")
    p.add_argument("--render", metavar="JSON", help="re-render the section from a saved raw JSON instead of measuring")
    a = p.parse_args(argv)
    fams = "".join(dict.fromkeys(x.strip().upper() for x in a.only.split(",") if x.strip()))
    bad = [f for f in fams if f not in FAMILIES]
    if bad or not fams:
        p.error(f"unknown case family {bad[0] if bad else a.only!r}: choose from {','.join(FAMILIES)}")
    cfg = BenchConfig(families=fams, skip_triton=a.skip_triton, before_delay_us=a.before_delay_us, repository=a.repository)
    if a.quick:
        cfg.rounds, cfg.duration, cfg.warmup = 1, 1.0, 0.3
    for k in ("rounds", "duration", "warmup"):
        if getattr(a, k) is not None:
            setattr(cfg, k, getattr(a, k))
    if cfg.rounds < 1 or cfg.duration <= 0 or cfg.warmup < 0:
        p.error("--rounds must be >= 1, --duration > 0, --warmup >= 0")
    return cfg, a


def _terminate(signum, frame) -> None:
    raise SystemExit(128 + signum)  # unwinds through the finally blocks that stop the servers


def main(argv: list[str] | None = None) -> int:
    cfg, a = parse(argv)
    out = Path(a.out)
    if a.render:
        result = json.loads(Path(a.render).read_text(encoding="utf-8"))
        report.write_section(report.render(result), out)
        print(f"[bench] wrote {out}", file=sys.stderr)
        return 0
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # also when started in the background, where it is ignored
    atexit.register(targets.stop_all)
    started, now = time.monotonic(), dt.datetime.now().astimezone()
    result = {"date": now.isoformat(timespec="seconds"), "machine": machine(),
              "command": shlex.join(["python", "bench/serve_bench.py", *(sys.argv[1:] if argv is None else argv)])}
    specs = plan(cfg.families, cfg.skip_triton)
    prepare_models(models(specs), cfg)
    pool = Pool(cfg)
    try:
        raw = run_rounds(specs, pool)
    except KeyboardInterrupt:
        print("[bench] interrupted: servers stopped, nothing written", file=sys.stderr)
        return 130
    finally:
        pool.stop()
        targets.stop_all()
    raw_dir = Path(a.raw_dir)
    raw_dir.mkdir(parents=True, exist_ok=True)
    json_path = raw_dir / f"serve_bench-{now.strftime('%Y%m%dT%H%M%S')}.json"
    config = {k: v for k, v in asdict(cfg).items() if k != "models"}
    config["models"] = {n: {"onnx": m["onnx"], "features": m["features"]} for n, m in cfg.models.items()}
    shown = json_path.relative_to(BENCH.parent) if json_path.is_relative_to(BENCH.parent) else json_path
    result.update(config=config, targets=pool.info, raw=raw, wall_s=time.monotonic() - started, json=str(shown))
    json_path.write_text(json.dumps(result, indent=1), encoding="utf-8")
    text = report.render(result)
    report.write_section(text, out)
    print(text)
    print(f"[bench] wrote {out} and {json_path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
