"""Serving benchmark: zoo-server vs Triton (triton-anchor) vs in-process onnxruntime, side by side in one run.

For each model: 1-row requests at concurrency 1, 4, 16 (req/s, p50, p99) and 1,024-row requests at concurrency
1 and 4 (rows/s). Every repeat runs every case on every target, rotating the target order, so drift hits all;
the report gives medians over repeats and the median of the per-repeat ratios. Both servers run with the same
max batch, queue delay and one onnxruntime thread. The load generator (bench/_grpc_load.py) and the onnxruntime
limit (bench/_ort_limit.py) run as subprocesses; the servers' CPU is read from /proc over the measured window.

    python bench/serve_bench.py                     # full run: iris + mnist, 5 s windows, 3 repeats
    python bench/serve_bench.py --quick             # smoke run: short windows, 1 repeat
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
OUT = BENCH / "out"
RESULTS = BENCH / "RESULTS.md"
SECTION = "## Serving"
ZOO = Path(sys.executable).with_name("zoo")
TRITON_ANCHOR = os.environ.get("TRITON_ANCHOR", "/work/shared/tools/triton-anchor")
PERF_ANALYZER = os.environ.get("PERF_ANALYZER", "/work/shared/tools/perf-analyzer")
FEATURES = {"iris": 4, "mnist": 784}
TARGETS = ("zoo", "triton", "floor", "ort")


@dataclass
class BenchConfig:
    """What one benchmark run measures (defaults: the full run)."""

    models: list[str] = field(default_factory=lambda: ["iris", "mnist"])
    duration: float = 5.0  # measured seconds per case and target
    warmup: float = 1.0  # seconds of load before each measured window
    repeats: int = 3  # medians are taken over these
    concurrency: list[int] = field(default_factory=lambda: [1, 4, 16])  # 1-row requests in flight
    big_rows: int = 1024  # rows per request of the bulk cases
    big_concurrency: list[int] = field(default_factory=lambda: [1, 4])
    max_batch: int = 1024  # both servers
    delay_us: int = 200  # both servers' max queue delay
    threads: int = 1  # onnxruntime intra-op threads, both servers and the limit
    skip_triton: bool = False
    cross_check: bool = False  # also run perf_analyzer (1-row, same concurrencies) against both servers, once
    floor: bool = False  # also measure 1-row requests on a bare grpc.aio server (bench/_grpc_floor.py)
    repository: str = str(OUT / "models")
    runs: str = str(OUT / "runs")


# ---------------------------------------------------------------- models


def ensure_model(name: str, cfg: BenchConfig) -> Path:
    """Path of <repository>/<name>/<latest>/model.onnx, training and exporting the recipe first if absent."""
    root = Path(cfg.repository) / name
    versions = sorted(int(p.name) for p in root.glob("*") if p.name.isdigit() and (p / "model.onnx").exists())
    if not versions:
        print(f"[bench] training and exporting {name} into {cfg.repository}", file=sys.stderr)
        subprocess.run([str(ZOO), "train", name, "--runs", cfg.runs, "-q"], check=True)
        subprocess.run([str(ZOO), "export", name, "--runs", cfg.runs, "--repository", cfg.repository], check=True)
        return ensure_model(name, cfg)
    return root / str(versions[-1]) / "model.onnx"


# ---------------------------------------------------------------- servers


def descendants(pid: int) -> list[int]:
    """pid and all its descendant processes (Triton runs its python backend in a child stub)."""
    children: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                ppid = int(Path(f"/proc/{d}/stat").read_bytes().rsplit(b")", 1)[1].split()[1])
            except (OSError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


class Server:
    """A server subprocess in its own process group; stop() ends it and everything it started."""

    def __init__(self, name: str, proc: subprocess.Popen, port: int, log: list[str]):
        self.name, self.proc, self.port, self.log = name, proc, port, log

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def pids(self) -> list[int]:
        return descendants(self.proc.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def _drain(stream, lines: list[str]) -> None:
    for line in stream:
        lines.append(line)
        del lines[:-200]


def _start_logged(name: str, cmd: list[str]) -> Server:
    """Start a server on port 0 and return once its stderr says 'listening on HOST:PORT'."""
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, start_new_session=True)
    lines: list[str] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        lines.append(line)
        if "listening on " in line:
            port = int(line.split("listening on ")[1].split()[0].rsplit(":", 1)[1])
            threading.Thread(target=_drain, args=(proc.stderr, lines), daemon=True).start()
            return Server(name, proc, port, lines)
    proc.kill()
    raise RuntimeError(f"{name} did not start:\n" + "".join(lines))


def start_zoo(cfg: BenchConfig) -> Server:
    """zoo-server on an ephemeral port over the bench repository."""
    return _start_logged("zoo", [
        sys.executable, "-m", "zoo.server", "--repository", cfg.repository, "--host", "127.0.0.1", "--port", "0",
        "--metrics-port", "-1", "--max-batch-size", str(cfg.max_batch), "--max-queue-delay-us", str(cfg.delay_us),
        "--intra-op-threads", str(cfg.threads)])


def start_floor() -> Server:
    """The bare grpc.aio server: what any Python grpc.aio server pays per request before doing any work."""
    return _start_logged("floor", [sys.executable, str(BENCH / "_grpc_floor.py")])


def _free_triple() -> int:
    """A port P with P-1, P and P+1 free right now (triton-anchor needs all three; a race is unlikely)."""
    for _ in range(100):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            p = s.getsockname()[1]
        if not 1025 < p < 65534:
            continue
        ok = True
        for q in (p - 1, p + 1):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", q))
                except OSError:
                    ok = False
        if ok:
            return p
    raise RuntimeError("no three adjacent free ports")


def wait_ready(address: str, model: str, proc: subprocess.Popen, timeout: float) -> None:
    """Poll ServerReady and ModelReady until both say ready."""
    import grpc

    from zoo.proto import grpc_service_pb2 as pb
    from zoo.proto import grpc_service_pb2_grpc as pb_grpc

    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(address) as ch:
        stub = pb_grpc.GRPCInferenceServiceStub(ch)
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}")
            try:
                if stub.ServerReady(pb.ServerReadyRequest(), timeout=2).ready and \
                        stub.ModelReady(pb.ModelReadyRequest(name=model), timeout=2).ready:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.5)
    raise RuntimeError(f"{address} not ready for {model} after {timeout:.0f}s")


def start_triton(onnx: Path, model: str, cfg: BenchConfig) -> Server:
    """triton-anchor (Triton 2.51, python backend running onnxruntime) on one model; returns once it is ready."""
    port = _free_triple()
    cmd = [TRITON_ANCHOR, str(onnx), model, str(port), str(cfg.delay_us), str(cfg.max_batch)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines: list[str] = []
    threading.Thread(target=_drain, args=(proc.stdout, lines), daemon=True).start()
    server = Server("triton", proc, port, lines)
    try:
        wait_ready(server.address, model, proc, timeout=300)  # the first call installs Triton (~1 min)
    except BaseException:
        server.stop()
        raise RuntimeError("triton-anchor did not start:\n" + "".join(lines[-30:]))
    return server


# ---------------------------------------------------------------- measurements


def run_json(cmd: list[str], timeout: float) -> list[dict]:
    """Run a helper and parse the JSON objects it prints, one a line."""
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"{shlex.join(cmd)} failed ({r.returncode}):\n{r.stderr[-3000:]}")
    return [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]


def grpc_load(server: Server, model: str, rows: int, concurrency: int, cfg: BenchConfig) -> dict:
    cmd = [sys.executable, str(BENCH / "_grpc_load.py"), "--address", server.address, "--model", model,
           "--features", str(FEATURES[model]), "--rows", str(rows), "--concurrency", str(concurrency),
           "--warmup", str(cfg.warmup), "--duration", str(cfg.duration),
           "--server-pids", ",".join(map(str, server.pids()))]
    out = run_json(cmd, timeout=cfg.warmup + cfg.duration + 120)[0]
    if out["errors"]:
        raise RuntimeError(f"{server.name} {model} rows={rows} c={concurrency}: {out['errors']} errors, e.g. {out['first_errors']}")
    return out


def ort_limit(onnx: Path, rows: int, cfg: BenchConfig) -> dict:
    cmd = [sys.executable, str(BENCH / "_ort_limit.py"), str(onnx), "--rows", str(rows),
           "--warmup", str(cfg.warmup), "--duration", str(cfg.duration)]
    return run_json(cmd, timeout=cfg.warmup + cfg.duration + 120)[0]


def cases(cfg: BenchConfig) -> list[tuple[int, int]]:
    """(rows per request, concurrency) of every measured case."""
    return [(1, c) for c in cfg.concurrency] + [(cfg.big_rows, c) for c in cfg.big_concurrency]


def perf_analyzer(server: Server, model: str, cfg: BenchConfig) -> list[dict]:
    """perf_analyzer, 1-row requests at each concurrency: a second, C++ load generator as a cross-check."""
    import csv
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "input.json"
        data.write_text(json.dumps({"data": [{"input": {"content": [0.5] * FEATURES[model], "shape": [FEATURES[model]]}}]}))
        rows = []
        for c in cfg.concurrency:
            csv_path = Path(tmp) / f"c{c}.csv"
            # A loose stability bar: on a shared 2-core box the default 10% often never settles.
            cmd = [PERF_ANALYZER, "-m", model, "-u", server.address, "-i", "grpc", "-b", "1",
                   "--concurrency-range", f"{c}:{c}", "--input-data", str(data), "--stability-percentage", "50",
                   "--max-trials", "6", "--measurement-interval", str(int(cfg.duration * 1000)), "-f", str(csv_path)]
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
            if r.returncode != 0 or not csv_path.exists():
                print(f"[bench] perf_analyzer failed on {server.name} c={c}:\n{(r.stdout + r.stderr)[-800:]}", file=sys.stderr)
                rows.append({"concurrency": c, "req_per_s": float("nan"), "p50_ms": float("nan"), "p99_ms": float("nan")})
                continue
            row = next(csv.DictReader(csv_path.open()))
            rows.append({"concurrency": c, "req_per_s": float(row["Inferences/Second"]),
                         "p50_ms": float(row["p50 latency"]) / 1e3, "p99_ms": float(row["p99 latency"]) / 1e3})
        return rows


def bench_model(model: str, servers: dict[str, Server], cfg: BenchConfig) -> dict:
    """Every case on every target, cfg.repeats times; raw results per repeat."""
    onnx = ensure_model(model, cfg)
    servers = dict(servers)
    if not cfg.skip_triton:
        servers["triton"] = start_triton(onnx, model, cfg)
    zoo, triton = servers["zoo"], servers.get("triton")
    targets = [t for t in TARGETS if t in servers or t == "ort"]
    raw: dict[str, list[dict]] = {}  # "rows x c" -> per repeat {target: result}
    cross: dict = {}
    try:
        for r in range(cfg.repeats):
            order = targets[r % len(targets):] + targets[: r % len(targets)]  # rotate who goes first
            for rows, c in cases(cfg):
                got = {}
                for t in order:
                    if t == "ort":
                        # The limit on one thread: a batch of c rows stands for c one-row requests batched perfectly.
                        got[t] = ort_limit(onnx, rows if rows > 1 else c, cfg)
                    else:
                        got[t] = grpc_load(servers[t], model, rows, c, cfg)
                raw.setdefault(f"{rows}x{c}", []).append(got)
                print(f"[bench] {model} repeat {r + 1}/{cfg.repeats} rows={rows} c={c}: "
                      + ", ".join(f"{t} {got[t]['rows_per_s']:,.0f} rows/s p50 {got[t]['p50_ms']:.2f} ms" for t in order if t in got),
                      file=sys.stderr)
        if cfg.cross_check:
            cross = {s.name: perf_analyzer(s, model, cfg) for s in (zoo, triton) if s is not None}
    finally:
        if triton is not None:
            triton.stop()
    return {"onnx": str(onnx), "raw": raw, "perf_analyzer": cross}


# ---------------------------------------------------------------- summary


def med(values: list[float]) -> float:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else float("nan")


def summarize(raw: dict[str, list[dict]]) -> dict:
    """Per case: medians over repeats of each target's metrics, and the per-repeat ratios (median, min, max)."""
    out = {}
    for key, reps in raw.items():
        s: dict = {}
        for t in reps[0]:
            s[t] = {m: med([rep[t].get(m) for rep in reps])
                    for m in ("req_per_s", "rows_per_s", "p50_ms", "p99_ms", "server_cpu_us_per_req", "client_cpu_cores", "server_cpu_cores")}
        for other in ("triton", "floor", "ort"):
            if "zoo" in reps[0] and other in reps[0]:
                ratios = [rep["zoo"]["rows_per_s"] / rep[other]["rows_per_s"] for rep in reps]
                s[f"zoo/{other}"] = {"median": med(ratios), "min": min(ratios), "max": max(ratios)}
        out[key] = s
    return out


def machine() -> dict:
    """CPU model, cores and the versions that matter."""
    import google.protobuf
    import grpc
    import numpy
    import onnxruntime

    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = float("nan")
    return {
        "cpu": cpu, "cores": os.cpu_count(), "load_avg_1m_at_start": load, "kernel": platform.release(),
        "python": platform.python_version(), "onnxruntime": onnxruntime.__version__, "grpcio": grpc.__version__,
        "protobuf": google.protobuf.__version__, "numpy": numpy.__version__,
    }


def _f(v: float, digits: int = 0) -> str:
    return "n/a" if v != v else f"{v:,.{digits}f}"


def _r(v: float) -> str:
    return f"{v:.2f}" if v >= 0.095 else f"{v:.2g}"


def _ratio(r: dict | None) -> str:
    if not r:
        return "n/a"
    return f"**{_r(r['median'])}**" + (f" ({_r(r['min'])}–{_r(r['max'])})" if r["max"] != r["min"] else "")


def render(result: dict) -> str:
    """The `## Serving` section: machine, command, tables, reading."""
    cfg, m = result["config"], result["machine"]
    has_t = not cfg["skip_triton"]
    lines = [
        SECTION, "",
        f"Run {result['date']} on {m['cpu']}, {m['cores']} cores (1-min load average at start {m['load_avg_1m_at_start']:.2f}); "
        f"Python {m['python']}, onnxruntime {m['onnxruntime']}, grpcio {m['grpcio']}, protobuf {m['protobuf']}, numpy {m['numpy']}.",
        "",
        f"Command: `{result['command']}` ({result['wall_s'] / 60:.1f} min). Raw numbers: `{result['json']}`.",
        "",
        f"Targets: **zoo** = `zoo-server --max-batch-size {cfg['max_batch']} --max-queue-delay-us {cfg['delay_us']} "
        f"--intra-op-threads {cfg['threads']}`; "
        + (f"**Triton** = `triton-anchor MODEL.onnx NAME PORT {cfg['delay_us']} {cfg['max_batch']}` (Triton 2.51 CPU, "
           "python backend running onnxruntime on 1 thread, dynamic batching, 1 instance); " if has_t else "")
        + ("**floor** = `bench/_grpc_floor.py`, a bare grpc.aio server answering a cached response (no model, no batcher): "
           "what any Python grpc.aio server pays per request; " if cfg.get("floor") else "")
        + "**ORT** = in-process onnxruntime, one thread, `sess.run` in a loop: the limit. For 1-row requests at "
        "concurrency C the ORT column runs C-row batches (C one-row requests batched perfectly, no RPC): its req/s is a "
        "ceiling and its latency a lower bound; at C = 1 it is plain 1-row `sess.run`.",
        "",
        f"Load: `bench/_grpc_load.py`, one process, grpc.aio, C calls in flight, the request serialized once "
        f"(raw_input_contents), {cfg['warmup']:g} s warm-up then {cfg['duration']:g} s measured; client and server share "
        f"the {m['cores']} cores. Every value is the median of {cfg['repeats']} repeats; each repeat runs every case on "
        "every target back to back, rotating which goes first. Ratios are per-repeat ratios (median, min–max), "
        "measured side by side. CPU µs/req: the server's process tree (Triton: server + python stub) over the window.",
    ]
    label = {"zoo": "zoo", "triton": "Triton", "floor": "floor", "ort": "ORT"}
    for model, mres in result["models"].items():
        s = mres["summary"]
        lines += ["", f"### {model} ({FEATURES[model]} features)", "", "1-row requests:", ""]
        k1 = s[f"1x{cfg['concurrency'][0]}"]
        ts = [t for t in TARGETS if t in k1]  # targets measured, the limit last
        srv = [t for t in ts if t != "ort"]
        vs = [t for t in ts if t != "zoo"]
        hdr = ["C"] + [f"{label[t]} req/s" for t in ts] + [f"zoo/{label[t]}" for t in vs]
        hdr += [f"p50 ms {' / '.join(label[t] for t in ts)}", f"p99 ms {' / '.join(label[t] for t in ts)}",
                f"server CPU µs/req {' / '.join(label[t] for t in srv)}", "client cores"]
        lines += ["| " + " | ".join(hdr) + " |", "|" + "---|" * len(hdr)]
        for c in cfg["concurrency"]:
            k = s[f"1x{c}"]
            row = [str(c)] + [_f(k[t]["req_per_s"]) for t in ts] + [_ratio(k.get(f"zoo/{t}")) for t in vs]
            row += [" / ".join(_f(k[t]["p50_ms"], 2) for t in ts), " / ".join(_f(k[t]["p99_ms"], 2) for t in ts),
                    " / ".join(_f(k[t]["server_cpu_us_per_req"]) for t in srv), " / ".join(_f(k[t]["client_cpu_cores"], 2) for t in srv)]
            lines.append("| " + " | ".join(row) + " |")
        lines += ["", f"{cfg['big_rows']:,}-row requests:", ""]
        kb = s[f"{cfg['big_rows']}x{cfg['big_concurrency'][0]}"]
        ts = [t for t in TARGETS if t in kb]
        srv = [t for t in ts if t != "ort"]
        vs = [t for t in ts if t != "zoo"]
        hdr = ["C"] + [f"{label[t]} rows/s" for t in ts] + [f"zoo/{label[t]}" for t in vs]
        hdr += [f"p50 ms {' / '.join(label[t] for t in ts)}", f"server CPU ms/req {' / '.join(label[t] for t in srv)}"]
        lines += ["| " + " | ".join(hdr) + " |", "|" + "---|" * len(hdr)]
        for c in cfg["big_concurrency"]:
            k = s[f"{cfg['big_rows']}x{c}"]
            row = [str(c)] + [_f(k[t]["rows_per_s"]) for t in ts] + [_ratio(k.get(f"zoo/{t}")) for t in vs]
            row += [" / ".join(_f(k[t]["p50_ms"], 2) for t in ts), " / ".join(_f(k[t]["server_cpu_us_per_req"] / 1e3, 2) for t in srv)]
            lines.append("| " + " | ".join(row) + " |")
        if mres.get("perf_analyzer"):
            lines += ["", "Cross-check with perf_analyzer (C++ client, 1-row, one pass, not repeated): req/s (p50 / p99 ms):", ""]
            names = list(mres["perf_analyzer"])
            lines += ["| C | " + " | ".join(label[n] for n in names) + " |", "|---|" + "---|" * len(names)]
            for i, c in enumerate(cfg["concurrency"]):
                pa = [mres["perf_analyzer"][n][i] for n in names]
                cells = [f"{_f(x['req_per_s'])} ({_f(x['p50_ms'], 2)} / {_f(x['p99_ms'], 2)})" if x["req_per_s"] == x["req_per_s"]
                         else "did not stabilise" for x in pa]
                lines.append(f"| {c} | " + " | ".join(cells) + " |")
    lines += ["", "Reading:", "", *(f"- {r}" for r in reading(result)), ""]
    return "\n".join(lines)


def reading(result: dict) -> list[str]:
    """A few generated sentences; edit the section by hand if you want to say more."""
    out = []
    cfg = result["config"]
    for model, mres in result["models"].items():
        s = mres["summary"]
        parts = []
        for c in cfg["concurrency"]:
            k = s[f"1x{c}"]
            vs = [f"{_r(k[f'zoo/{t}']['median'])}x {name}" for t, name in
                  (("triton", "Triton"), ("floor", "the grpc.aio floor"), ("ort", "the ORT ceiling")) if f"zoo/{t}" in k]
            parts.append(f"C={c}: " + ", ".join(vs))
        big = s[f"{cfg['big_rows']}x{cfg['big_concurrency'][0]}"]
        bulk = f"{cfg['big_rows']:,}-row C={cfg['big_concurrency'][0]}: {big['zoo/ort']['median']:.2f}x ORT rows/s"
        if "zoo/triton" in big:
            bulk += f", {big['zoo/triton']['median']:.2f}x Triton"
        out.append(f"{model}: 1-row req/s " + "; ".join(parts) + f". {bulk}.")
    if result["machine"]["load_avg_1m_at_start"] > 0.5:
        out.append(f"The machine was not idle at start (load {result['machine']['load_avg_1m_at_start']:.2f}): treat absolute numbers as noisy; "
                   "ratios are side by side and less affected.")
    return out


def write_section(text: str, path: Path = RESULTS) -> None:
    """Replace the `## Serving` section of RESULTS.md (up to the next `## ` heading) or append it; other sections stay."""
    old = path.read_text(encoding="utf-8") if path.exists() else "# Benchmark results\n"
    lines = old.splitlines()
    start = next((i for i, l in enumerate(lines) if l.strip() == SECTION), None)
    if start is None:
        new = old.rstrip("\n") + "\n\n" + text.rstrip("\n") + "\n"
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        new = "\n".join(lines[:start] + text.rstrip("\n").splitlines() + ([""] + lines[end:] if end < len(lines) else [])) + "\n"
    path.write_text(new, encoding="utf-8")


# ---------------------------------------------------------------- main


def parse(argv: list[str] | None) -> BenchConfig:
    d = BenchConfig()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default=",".join(d.models), help=f"comma-separated recipes (default {','.join(d.models)})")
    p.add_argument("--duration", type=float, help=f"seconds measured per case and target (default {d.duration})")
    p.add_argument("--warmup", type=float, help=f"seconds of warm-up load before each window (default {d.warmup})")
    p.add_argument("--repeats", type=int, help=f"repeats; medians over them (default {d.repeats})")
    p.add_argument("--delay-us", type=int, default=d.delay_us, help=f"both servers' max queue delay (default {d.delay_us})")
    p.add_argument("--skip-triton", action="store_true", help="measure zoo and the onnxruntime limit only")
    p.add_argument("--cross-check", action="store_true", help="also run perf_analyzer (1-row) against both servers, once per model")
    p.add_argument("--floor", action="store_true", help="also measure 1-row requests on a bare grpc.aio server (the Python gRPC floor)")
    p.add_argument("--quick", action="store_true", help="smoke run: 1 s windows, 0.3 s warm-up, 1 repeat (unless given)")
    p.add_argument("--no-write", action="store_true", help="print the section instead of writing bench/RESULTS.md")
    a = p.parse_args(argv)
    cfg = BenchConfig(models=[m for m in a.models.split(",") if m], delay_us=a.delay_us, skip_triton=a.skip_triton, cross_check=a.cross_check,
                      floor=a.floor)
    if a.quick:
        cfg.duration, cfg.warmup, cfg.repeats = 1.0, 0.3, 1
    for k in ("duration", "warmup", "repeats"):
        if getattr(a, k) is not None:
            setattr(cfg, k, getattr(a, k))
    unknown = [m for m in cfg.models if m not in FEATURES]
    if unknown:
        p.error(f"unknown model {unknown[0]}: choose from {', '.join(FEATURES)}")
    cfg.no_write = a.no_write  # type: ignore[attr-defined]
    return cfg


def main(argv: list[str] | None = None) -> int:
    cfg = parse(argv)
    started = time.monotonic()
    stamp = dt.datetime.now().strftime("%Y%m%dT%H%M%S")
    result = {"date": dt.datetime.now().astimezone().isoformat(timespec="seconds"), "machine": machine(),
              "command": shlex.join(["python", "bench/serve_bench.py", *(sys.argv[1:] if argv is None else argv)]),
              "config": {k: v for k, v in asdict(cfg).items()}, "models": {}}
    for model in cfg.models:
        ensure_model(model, cfg)
    servers = {"zoo": start_zoo(cfg)}
    try:
        if cfg.floor:
            servers["floor"] = start_floor()
        for model in cfg.models:
            mres = bench_model(model, servers, cfg)
            mres["summary"] = summarize(mres["raw"])
            result["models"][model] = mres
    finally:
        for server in servers.values():
            server.stop()
    OUT.mkdir(parents=True, exist_ok=True)
    json_path = OUT / f"serve_bench-{stamp}.json"
    result["wall_s"] = time.monotonic() - started
    result["json"] = str(json_path.relative_to(BENCH.parent))
    json_path.write_text(json.dumps(result, indent=1), encoding="utf-8")
    text = render(result)
    if getattr(cfg, "no_write", False):
        print(text)
    else:
        write_section(text)
        print(text)
        print(f"[bench] wrote {RESULTS} and {json_path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
