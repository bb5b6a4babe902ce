"""The rounds: every spec on every target back to back, targets rotated per round; servers started once and kept."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from serving import load, targets
from serving.plan import WIDE, Spec, rotated

ZOO = Path(sys.executable).with_name("zoo")
TRAIN_S = 3600.0  # the wide MLP takes minutes on two busy cores


@dataclass
class BenchConfig:
    """One run's settings (defaults: the full run)."""

    families: str = "BSMULWFHN"
    rounds: int = 3  # medians over these
    duration: float = 5.0  # measured seconds per spec and target (perf_analyzer: three windows of a third each)
    warmup: float = 1.0  # seconds of load before each measured window (perf_analyzer: a request count worth about that)
    max_batch: int = 1024  # zoo and Triton
    threads: int = 1  # onnxruntime intra-op threads, every target
    triton_delay_us: int = 200  # Triton's max queue delay, as in every earlier run
    before_delay_us: int = 200  # the before server's, as in the runs that measured its gains (its default was 500)
    skip_triton: bool = False
    repository: str = str(targets.OUT / "models")
    runs: str = str(targets.OUT / "runs")
    models: dict = field(default_factory=dict)  # name -> {"onnx", "features", "selfcheck"}, filled by prepare_models


def ensure_model(name: str, cfg: BenchConfig) -> Path:
    """<repository>/<name>/<latest>/model.onnx, training and exporting it first when absent."""
    from zoo.core import repository

    version = repository.latest_version(cfg.repository, name) if Path(cfg.repository, name).exists() else None
    if version is None:
        recipe = ["mnist", "--hidden", "2048,2048,2048", "--name", WIDE] if name == WIDE else [name]
        print(f"[bench] training and exporting {name} into {cfg.repository}", file=sys.stderr, flush=True)
        subprocess.run([str(ZOO), "train", *recipe, "--runs", cfg.runs, "-q"], check=True, timeout=TRAIN_S)
        subprocess.run([str(ZOO), "export", name, "--runs", cfg.runs, "--repository", cfg.repository], check=True, timeout=600)
        version = repository.latest_version(cfg.repository, name)
    return repository.version_dir(cfg.repository, name, version) / repository.MODEL_FILE


def prepare_models(names: list[str], cfg: BenchConfig) -> None:
    """Train what is missing, then record each model's file, width and self-check rows (perf_analyzer's input)."""
    from zoo.core import repository

    for name in names:
        onnx = ensure_model(name, cfg)
        card = repository.read_card(cfg.repository, name, int(onnx.parent.name))
        cfg.models[name] = {"onnx": str(onnx), "features": card.num_features, "selfcheck": card.selfcheck_inputs}


class Pool:
    """Targets started on first use and kept up for the whole run; a failed start is remembered, not retried."""

    def __init__(self, cfg: BenchConfig):
        self.cfg = cfg
        self.up: dict[str, targets.Target] = {}
        self.info: dict[str, dict] = {}  # key -> {"status": "up" | "failed", "reason", "start_s", "ports"}

    def get(self, name: str, model: str) -> targets.Target:
        key = f"triton:{model}" if name == "triton" else name  # one Triton per model; one zoo serves them all
        if key in self.up:
            t = self.up[key]
            if not t.alive():
                self.info[key].update(status="failed", reason="exited during the run: " + targets._reason(t.log, t.proc, ""))
                del self.up[key]
        if self.info.get(key, {}).get("status") == "failed":
            raise targets.StartFailed(self.info[key]["reason"])
        if key not in self.up:
            t0 = time.monotonic()
            print(f"[bench] starting {key}", file=sys.stderr, flush=True)
            try:
                self.up[key] = self._start(name, model)
            except targets.StartFailed as e:
                self.info[key] = {"status": "failed", "reason": str(e), "start_s": time.monotonic() - t0}
                print(f"[bench] {key} failed to start: {e}", file=sys.stderr, flush=True)
                raise
            t = self.up[key]
            self.info[key] = {"status": "up", "start_s": time.monotonic() - t0, "port": t.port, "http_port": t.http_port}
        return self.up[key]

    def _start(self, name: str, model: str) -> targets.Target:
        c, repo = self.cfg, Path(self.cfg.repository)
        if name == "triton":
            return targets.start_triton(Path(c.models[model]["onnx"]), model, delay_us=c.triton_delay_us, max_batch=c.max_batch)
        if name == "before":
            return targets.start_before(repo, max_batch=c.max_batch, threads=c.threads, delay_us=c.before_delay_us)
        if name == "floor":
            return targets.start_floor()
        workers = {"zoo-w2": 2, "zoo-w3": 3}.get(name, 1)
        max_batch = 1 if name == "zoo-mb1" else c.max_batch
        # The worker variants serve goal U (gRPC only) with HTTP off: at ef6f0f0 workers cannot share the HTTP port
        # (each binds it without SO_REUSEPORT and the supervisor crash-loops), which would leave U unmeasured.
        return targets.start_zoo(repo, name=name, workers=workers, max_batch=max_batch, threads=c.threads, http=workers == 1)

    def stop(self) -> None:
        for t in self.up.values():
            t.stop()
        self.up.clear()


def measure(spec: Spec, name: str, pool: Pool, scratch: Path) -> dict:
    """One spec on one target: its numbers, or {"error": ...} / {"failed_to_start": ...}; never raises for a target."""
    cfg, m = pool.cfg, pool.cfg.models[spec.model]
    if name == "ort":
        try:
            return load.ort_limit(Path(m["onnx"]), rows=spec.rows, warmup=cfg.warmup, duration=cfg.duration)
        except load.LoadFailed as e:
            return {"error": str(e)}
    try:
        t = pool.get(name, spec.model)
    except targets.StartFailed as e:
        return {"failed_to_start": str(e)}
    before = load.model_counts(t.address, spec.model)
    try:
        if spec.tool == "grpc":
            res = load.grpc_load(t.address, spec.model, m["features"], rows=spec.rows, concurrency=spec.concurrency,
                                 warmup=cfg.warmup, duration=cfg.duration, pids=t.pids())
        else:
            address = t.http_address if spec.path.startswith("http") else t.address
            if address is None:
                return {"error": "no HTTP port"}
            data = scratch / f"{spec.model}.json"
            if not data.exists():
                load.input_data(data, m["selfcheck"], m["features"])
            res = load.perf_analyzer(address, spec.model, data, scratch / "pa.csv", path=spec.path, rows=spec.rows,
                                     concurrency=spec.concurrency, duration=cfg.duration, warmup=cfg.warmup, pids=t.pids())
    except load.LoadFailed as e:
        if not t.alive():
            return {"error": f"{name} exited: " + targets._reason(t.log, t.proc, str(e))}
        return {"error": str(e)}
    after = load.model_counts(t.address, spec.model)
    if before and after and after[1] > before[1]:
        # Rows per model call over the whole run (warm-up included): how much the dynamic batcher merged.
        res["rows_per_call"] = (after[0] - before[0]) / (after[1] - before[1])
    return res


def run_rounds(specs: list[Spec], pool: Pool) -> dict:
    """{spec key: {"spec": ..., "rounds": [{target: result}]}} over cfg.rounds rounds."""
    raw: dict[str, dict] = {s.key: {"spec": {**s.__dict__, "targets": list(s.targets)}, "rounds": []} for s in specs}
    with tempfile.TemporaryDirectory(prefix="serve-bench-") as tmp:
        for r in range(pool.cfg.rounds):
            for s in specs:
                got = {}
                for name in rotated(s.targets, r):
                    got[name] = measure(s, name, pool, Path(tmp))
                    print(f"[bench] round {r + 1}/{pool.cfg.rounds} {s.key} {name}: {_brief(got[name])}", file=sys.stderr, flush=True)
                raw[s.key]["rounds"].append(got)
    return raw


def _brief(res: dict) -> str:
    if "failed_to_start" in res:
        return "failed to start: " + res["failed_to_start"][:120]
    if "error" in res:
        return "error: " + res["error"][:200]
    cpu = res.get("server_cpu_us_per_req")
    return (f"{res['req_per_s']:,.0f} req/s, p50 {res['p50_ms']:.2f} ms, p99 {res['p99_ms']:.2f} ms"
            + (f", server {cpu:,.0f} µs CPU/req" if cpu else ""))
