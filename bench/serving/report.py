"""The `## Serving` section of bench/RESULTS.md: machine, command, one table per case family, the GOALS table."""

from __future__ import annotations

import statistics
from pathlib import Path

from serving.plan import LABEL, WIDE

SECTION = "## Serving"
PATH_LABEL = {"grpc": "gRPC unary", "stream": "gRPC streaming", "shm": "gRPC + system shared memory",
              "http-json": "HTTP, JSON tensors", "http-binary": "HTTP, binary tensors"}


def key(tool: str, path: str, model: str, rows: int, c: int) -> str:
    return f"{tool}:{path}:{model}:{rows}x{c}"


class View:
    """Read access to one run's raw rounds: per-target medians, per-round ratios and why something is missing."""

    def __init__(self, result: dict):
        self.raw, self.cfg, self.info = result["raw"], result["config"], result.get("targets", {})

    def rounds(self, k: str, t: str) -> list[dict]:
        return [r[t] for r in self.raw.get(k, {}).get("rounds", []) if t in r]

    def ok(self, k: str, t: str) -> list[dict]:
        return [r for r in self.rounds(k, t) if "error" not in r and "failed_to_start" not in r]

    def why(self, k: str, t: str) -> str | None:
        """None when measured at least once, else the reason in a few words."""
        if self.ok(k, t):
            return None
        if k not in self.raw:
            return f"not in this run (families {self.cfg['families']})"
        if t not in self.raw[k]["spec"]["targets"]:
            return "skipped (--skip-triton)" if t == "triton" else "not run"
        bad = self.rounds(k, t)[-1]
        return f"failed to start: {bad['failed_to_start']}" if "failed_to_start" in bad else f"error: {bad['error']}"

    def med(self, k: str, t: str, metric: str) -> float | None:
        vals = [r[metric] for r in self.ok(k, t) if r.get(metric) is not None]
        return statistics.median(vals) if vals else None

    def ratios(self, k: str, a: str, b: str, metric: str) -> list[float]:
        """a/b per round where both were measured (the same round: side by side)."""
        out = []
        for r in self.raw.get(k, {}).get("rounds", []):
            x, y = r.get(a, {}).get(metric), r.get(b, {}).get(metric)
            if x is not None and y:
                out.append(x / y)
        return out


def _n(v: float | None, digits: int = 0) -> str:
    return "n/a" if v is None else f"{v:,.{digits}f}"


def _r(v: float) -> str:
    return f"{v:.2f}" if v >= 0.095 else f"{v:.2g}"


def ratio_text(rs: list[float]) -> str:
    if not rs:
        return "n/a"
    lo, hi = min(rs), max(rs)
    return f"**{_r(statistics.median(rs))}**" + (f" ({_r(lo)}–{_r(hi)})" if len(rs) > 1 else "")


def _short(text: str, n: int = 90) -> str:
    text = " ".join(text.split()).replace("|", "/")
    return text if len(text) <= n else text[: n - 1] + "…"


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header), *("| " + " | ".join(r) + " |" for r in rows)]


def target_rows(v: View, k: str, names: list[str], metrics: list[tuple[str, int]], num: str | None, den: str | None,
                ratio_metric: str) -> list[list[str]]:
    """One row per target: its medians, and the ratio num/den (None = this row's target) on the other rows."""
    rows = []
    for t in names:
        why = v.why(k, t)
        if why:
            rows.append([LABEL[t], _short(why)] + [""] * len(metrics))
            continue
        cells = [_n(v.med(k, t, m), d) for m, d in metrics]
        a, b = num or t, den or t
        rows.append([LABEL[t]] + cells + ["" if a == b else ratio_text(v.ratios(k, a, b, ratio_metric))])
    return rows


LAT = [("p50_ms", 2), ("p99_ms", 2)]


def _cell(v: View, k: str, t: str, metric: str, digits: int, width: int) -> str:
    """The median, or why there is none."""
    why = v.why(k, t)
    return _short(why, width) if why else _n(v.med(k, t, metric), digits)


def family_tables(v: View) -> list[str]:
    fam, out = v.cfg["families"], []
    if "B" in fam:
        for model in ("iris", "mnist"):
            out += ["", f"### B: batcher before/after, {model}, 1-row unary requests (our load generator)", ""]
            rows = []
            for c in (1, 4, 16):
                k = key("grpc", "grpc", model, 1, c)
                metrics = [("req_per_s", 0), *LAT, ("server_cpu_us_per_req", 0), ("rows_per_call", 1)]
                rows += [[str(c), *r] for r in target_rows(v, k, ["zoo", "before", "triton"], metrics, "zoo", None, "req_per_s")]
            out += table(["C", "target", "req/s", "p50 ms", "p99 ms", "server CPU µs/req", "rows per model call", "zoo ÷ this, req/s"],
                         rows)
    if "S" in fam:
        k = key("pa", "stream", "mnist", 1, 16)
        out += ["", "### S: streaming (ModelStreamInfer), 1-row, C=16, perf_analyzer --streaming", ""]
        out += table(["target", "req/s", "p50 ms", "p99 ms", "zoo ÷ this"],
                     target_rows(v, k, ["zoo", "triton"], [("req_per_s", 0)] + LAT, "zoo", None, "req_per_s"))
    if "M" in fam:
        k = key("pa", "shm", "mnist", 1024, 4)
        out += ["", "### M: system shared memory, 1,024 rows per request, C=4, perf_analyzer --shared-memory system", ""]
        out += table(["target", "rows/s", "requests/s", "p50 ms", "p99 ms", "zoo ÷ this, rows/s"],
                     target_rows(v, k, ["zoo", "triton", "ort"], [("rows_per_s", 0), ("req_per_s", 1)] + LAT, "zoo", None, "rows_per_s"))
    if "U" in fam:
        k = key("pa", "grpc", "mnist", 1, 16)
        out += ["", "### U: unary under load with workers, 1-row, C=16, perf_analyzer gRPC", ""]
        out += table(["target", "req/s", "p50 ms", "p99 ms", "server cores (avg over the run)", "this ÷ Triton"],
                     target_rows(v, k, ["zoo", "zoo-w2", "zoo-w3", "triton"], [("req_per_s", 0)] + LAT + [("server_cpu_cores", 2)],
                                 None, "triton", "req_per_s"))
    if "L" in fam:
        out += ["", "### L: latency at C=1, 1-row, perf_analyzer on each path", ""]
        rows = []
        for p in ("grpc", "stream", "shm", "http-json", "http-binary"):
            k = key("pa", p, "mnist", 1, 1)
            cells = [_cell(v, k, t, m, 2, 60) for m in ("p50_ms", "p99_ms") for t in ("zoo", "triton")]
            rows.append([PATH_LABEL[p], cells[0], cells[1], ratio_text(v.ratios(k, "zoo", "triton", "p50_ms")), cells[2], cells[3]])
        out += table(["path", "zoo p50 ms", "Triton p50 ms", "zoo ÷ Triton, p50", "zoo p99 ms", "Triton p99 ms"], rows)
    if "W" in fam:
        k = key("grpc", "grpc", WIDE, 1, 16)
        out += ["", f"### W: wide MLP ({WIDE}, 784-2048-2048-2048-10), 1-row, C=16, dynamic batching on vs off (our load generator)", ""]
        out += table(["target", "req/s", "p50 ms", "p99 ms", "server CPU µs/req", "rows per model call", "zoo ÷ this, req/s"],
                     target_rows(v, k, ["zoo", "zoo-mb1"], [("req_per_s", 0)] + LAT + [("server_cpu_us_per_req", 0), ("rows_per_call", 1)],
                                 "zoo", None, "req_per_s"))
    if "F" in fam:
        k = key("grpc", "grpc", "mnist", 1, 16)
        out += ["", "### F: server CPU per request, 1-row unary, C=16 (our load generator)", ""]
        out += table(["target", "req/s", "p50 ms", "p99 ms", "server CPU µs/req", "server cores", "zoo ÷ this, CPU/req"],
                     target_rows(v, k, ["zoo", "floor", "triton"], [("req_per_s", 0), *LAT, ("server_cpu_us_per_req", 0),
                                 ("server_cpu_cores", 2)], "zoo", None, "server_cpu_us_per_req"))
    if "H" in fam:
        out += ["", "### H: HTTP/REST, 1-row, perf_analyzer -i http (zoo --http-port vs Triton's HTTP port)", ""]
        rows = []
        for f in ("json", "binary"):
            for c in (1, 16):
                k = key("pa", f"http-{f}", "mnist", 1, c)
                pair = [" / ".join(_cell(v, k, t, m, d, 50) for t in ("zoo", "triton"))
                        for m, d in (("req_per_s", 0), ("p50_ms", 2), ("p99_ms", 2))]
                rows.append([f, str(c), pair[0], ratio_text(v.ratios(k, "zoo", "triton", "req_per_s")), pair[1], pair[2]])
        out += table(["tensors", "C", "req/s zoo / Triton", "zoo ÷ Triton, req/s", "p50 ms zoo / Triton", "p99 ms zoo / Triton"], rows)
    if "N" in fam:
        out += ["", "### N: GPU scaling and routing", "", "Not measured here: needs a lent GPU machine."]
    return out


def _goal(v: View, fam: str, gid: str, what: str, rule: str, rs: list[float], ok, why: str | None, extra: str = "") -> list[str]:
    if fam not in v.cfg["families"]:
        why = f"not measured in this run (families {v.cfg['families']})"
    if not rs or fam not in v.cfg["families"]:
        return [gid, what, rule, _short(why or "not measured", 160), "not measured here"]
    return [gid, what, rule, ratio_text(rs) + extra, "PASS" if ok(statistics.median(rs)) else "FAIL"]


def _why(v: View, k: str, *names: str) -> str | None:
    for t in names:
        w = v.why(k, t)
        if w:
            return f"{LABEL[t]}: {w}"
    return None


def goals(v: View, gpu: bool) -> list[list[str]]:
    """Every goal, measured or not; the ratio is the median (min–max) of per-round ratios, the rule applies to the median."""
    rows = []
    for model in ("iris", "mnist"):
        for c in (1, 4, 16):
            k = key("grpc", "grpc", model, 1, c)
            rows.append(_goal(v, "B", f"B {model} C={c}", "batcher kept its gains: zoo now ÷ before (a6a32c3), req/s", ">= 0.95",
                              v.ratios(k, "zoo", "before", "req_per_s"), lambda x: x >= 0.95, _why(v, k, "zoo", "before")))
    k = key("pa", "stream", "mnist", 1, 16)
    rows.append(_goal(v, "S", "S", "streaming, C=16: zoo ÷ Triton, req/s", ">= 1.2", v.ratios(k, "zoo", "triton", "req_per_s"),
                      lambda x: x >= 1.2, _why(v, k, "zoo", "triton")))
    k = key("pa", "shm", "mnist", 1024, 4)
    rows.append(_goal(v, "M", "M1", "shared memory, 1,024 rows, C=4: zoo ÷ Triton, rows/s", ">= 1.5",
                      v.ratios(k, "zoo", "triton", "rows_per_s"), lambda x: x >= 1.5, _why(v, k, "zoo", "triton")))
    rows.append(_goal(v, "M", "M2", "shared memory, 1,024 rows, C=4: zoo ÷ in-process onnxruntime (1 thread), rows/s", ">= 0.5",
                      v.ratios(k, "zoo", "ort", "rows_per_s"), lambda x: x >= 0.5, _why(v, k, "zoo", "ort")))
    k = key("pa", "grpc", "mnist", 1, 16)
    counts = {t: x for t in ("zoo", "zoo-w2", "zoo-w3") if (x := v.med(k, t, "req_per_s")) is not None}
    best = max(counts, key=counts.__getitem__, default="zoo")
    n = {"zoo": 1, "zoo-w2": 2, "zoo-w3": 3}[best]
    rows.append(_goal(v, "U", "U", "unary, C=16: best zoo worker count (1, 2 or 3 by median req/s) ÷ Triton, req/s", ">= 0.8",
                      v.ratios(k, best, "triton", "req_per_s"), lambda x: x >= 0.8, _why(v, k, best, "triton"),
                      f", best: --workers {n}"))
    for p in ("grpc", "stream", "shm", "http-json", "http-binary"):
        k = key("pa", p, "mnist", 1, 1)
        rows.append(_goal(v, "L", f"L {p}", f"latency at C=1, {PATH_LABEL[p]}: zoo p50 ÷ Triton p50", "<= 1.0",
                          v.ratios(k, "zoo", "triton", "p50_ms"), lambda x: x <= 1.0, _why(v, k, "zoo", "triton")))
    k = key("grpc", "grpc", WIDE, 1, 16)
    rows.append(_goal(v, "W", "W req/s", "wide MLP, C=16: batching on ÷ off, req/s", ">= 2.0",
                      v.ratios(k, "zoo", "zoo-mb1", "req_per_s"), lambda x: x >= 2.0, _why(v, k, "zoo", "zoo-mb1")))
    rows.append(_goal(v, "W", "W p99", "wide MLP, C=16: p99 on ÷ p99 off", "<= 1.0", v.ratios(k, "zoo", "zoo-mb1", "p99_ms"),
                      lambda x: x <= 1.0, _why(v, k, "zoo", "zoo-mb1")))
    k = key("grpc", "grpc", "mnist", 1, 16)
    rows.append(_goal(v, "F", "F", "server CPU per 1-row request, C=16: zoo ÷ bare grpc.aio floor", "<= 1.15",
                      v.ratios(k, "zoo", "floor", "server_cpu_us_per_req"), lambda x: x <= 1.15, _why(v, k, "zoo", "floor")))
    why = "needs a lent GPU machine" + ("" if gpu else " (this one has no GPU)")
    for gid, what in (("N1", "GPU scaling"), ("N2", "GPU routing")):
        rows.append([gid, what, "", f"not measured here: {why}", "not measured here"])
    return rows


def notes(v: View) -> list[str]:
    """What perf_analyzer or a target said that a reader should know (each distinct line once)."""
    seen: dict[str, list[str]] = {}
    for k, entry in v.raw.items():
        for r in entry["rounds"]:
            for t, res in r.items():
                for line in res.get("notes", []) + ([res["error"]] if "error" in res else []):
                    where = f"{LABEL[t]} on `{k}`"
                    seen.setdefault(_short(line, 300), [])
                    if where not in seen[_short(line, 300)]:
                        seen[_short(line, 300)].append(where)
    return [f"- {', '.join(w)}: `{line}`" for line, w in seen.items()]


def render(result: dict) -> str:
    """The whole section as Markdown."""
    v, m, c = View(result), result["machine"], result["config"]
    lines = [
        SECTION, "",
        f"Run {result['date']} on {m['cpu']}, {m['cores']} cores (1-min load average at start {m['load_avg_1m']:.2f}); "
        f"Python {m['python']}, onnxruntime {m['onnxruntime']}, grpcio {m['grpcio']}, protobuf {m['protobuf']}, "
        f"numpy {m['numpy']}, aiohttp {m['aiohttp']}.", "",
        f"Command: `{result['command']}` ({result['wall_s'] / 60:.1f} min). Raw numbers: `{result['json']}`.", "",
        f"Targets (all on 127.0.0.1, started once and kept up for the run): **zoo** = `zoo-server --max-batch-size {c['max_batch']} "
        f"--intra-op-threads {c['threads']}` (default queue delay, 2 ms at most, only for the company the previous batch had; `--allow-shared-memory`, HTTP on its own port); "
        f"`--workers 2|3` (HTTP off: goal U is gRPC) and `--max-batch-size 1` variants as named; **before** = the zoo server at a6a32c3 "
        f"(`python -m zoo.server`, `--max-queue-delay-us {c['before_delay_us']}`, stubs regenerated for this protobuf); "
        f"**Triton** = `triton-anchor MODEL.onnx NAME PORT {c['triton_delay_us']} {c['max_batch']}` (Triton 2.51 CPU, python backend "
        "running onnxruntime on 1 thread, dynamic batching); **floor** = `bench/_grpc_floor.py`, a bare grpc.aio server answering "
        "a cached response; **onnxruntime in-process** = `bench/_ort_limit.py`, one thread, no RPC.", "",
        f"Load: our generator `bench/_grpc_load.py` (grpc.aio, C calls in flight, unary, {c['warmup']:g} s warm-up then "
        f"{c['duration']:g} s measured) or perf_analyzer 2.60 (`/work/shared/tools/perf-analyzer`, finite input from the "
        f"model's self-check rows, three windows of {max(0.5, c['duration'] / 3):g} s after a warm-up). Every value is the "
        f"median of {c['rounds']} round{'s' if c['rounds'] > 1 else ''}; each round runs every case on every target back to "
        "back, rotating which target goes first. Ratios are per-round ratios, median (min–max). Server CPU: the server's "
        "whole process tree from /proc (workers, Triton's backend stub) over the measured window. Rows per model call: "
        "ModelStatistics' inference_count ÷ execution_count over the whole run, warm-up included. Client and servers share "
        "the machine's cores.",
    ]
    if m["load_avg_1m"] > 0.5:
        lines += ["", f"The machine was not idle at start (load {m['load_avg_1m']:.2f}): absolute numbers are noisy; "
                      "ratios are side by side and less affected."]
    lines += family_tables(v)
    lines += ["", "### GOALS", "", "PASS/FAIL applies the rule to the median of the per-round ratios (each ratio taken within one "
              "round, side by side). Goal B is one row per model and concurrency (1, 4, 16; iris and mnist): it holds only if "
              "all six pass.", ""]
    lines += table(["goal", "what", "rule", "measured: median (min–max)", "result"], goals(v, m.get("gpu", False)))
    said = notes(v)
    if said:
        lines += ["", "What the load generators reported (each distinct line once):", "", *said]
    return "\n".join(lines) + "\n"


def write_section(text: str, path: Path) -> None:
    """Replace the `## Serving` section of path (up to the next `## ` heading) or append it; other sections stay as they are."""
    old = path.read_text(encoding="utf-8") if path.exists() else "# Benchmark results\n"
    lines = old.splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip() == SECTION), None)
    if start is None:
        new = old.rstrip("\n") + "\n\n" + text.rstrip("\n") + "\n"
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        new = "\n".join(lines[:start] + text.rstrip("\n").splitlines() + ([""] + lines[end:] if end < len(lines) else [])) + "\n"
    path.write_text(new, encoding="utf-8")

