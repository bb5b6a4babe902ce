"""Loading training data from CSV: zoo.data.files.load_file, the pyarrow reader (new) vs the csv-module reader (old).

Generates a deterministic CSV (default 1.7M rows, 4 float features and a string label in the middle, ~52 MB) under
bench/out/, then times load_file(path, "species") in a fresh subprocess per run, old and new interleaved, medians
of --repeats. Peak memory is the child's ru_maxrss right after load_file returns (read before the fingerprint
check, which copies the arrays). A "baseline" child only imports what each reader imports (numpy, plus pyarrow and
pyarrow.csv for the new one), so peak - baseline is the memory the load itself took. This process stays small
(no numpy here; the CSV is written by a child): Linux carries the parent's RSS over into a child's ru_maxrss.

The old reader is `git show REV:zoo/data/files.py`, loaded into a module at run time (REV: HEAD, or, once the new
reader is committed, the parent of the commit that brought it). Both must give the same Dataset fingerprint.
    python bench/csv_bench.py [--rows 1700000] [--repeats 3] [--old-rev REV]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out" / "csv_bench"
TARGET = "species"
CHILD = r"""
import json, resource, sys, time, types
kind, path, target = sys.argv[1:4]
import numpy
if kind.endswith("new"):
    import pyarrow, pyarrow.csv
    import zoo.data.files as files
else:
    files = types.ModuleType("old_files")
    sys.modules["old_files"] = files
    exec(compile(sys.stdin.read(), "old zoo/data/files.py", "exec"), files.__dict__)
out = {}
if not kind.startswith("baseline"):
    t = time.perf_counter()
    d = files.load_file(path, target)
    out["wall_s"] = time.perf_counter() - t
out["peak_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
out["hwm_kib"] = int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1])
if not kind.startswith("baseline"):
    out["fingerprint"], out["rows"] = d.fingerprint(), len(d.X_train) + len(d.X_test)
out["versions"] = {m: sys.modules[m].__version__ for m in ("numpy", "pyarrow") if m in sys.modules}
print(json.dumps(out))
"""


def generate(path: Path, rows: int, seed: int = 0) -> None:
    """Write the benchmark CSV: columns a, b, species, c, d; 3 decimals; labels cat/dog/bird."""
    import numpy as np

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, 4)).tolist()
    labels = np.array(["cat", "dog", "bird"])[rng.integers(0, 3, rows)].tolist()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        f.write(f"a,b,{TARGET},c,d\n")
        f.writelines(f"{a:.3f},{b:.3f},{lab},{c:.3f},{d:.3f}\n" for (a, b, c, d), lab in zip(X, labels))


def _git(*args: str) -> str:
    """stdout of a read-only git command in the repository."""
    return subprocess.run(["git", *args], cwd=ROOT, check=True, capture_output=True, text=True).stdout


def old_source(rev: str | None) -> tuple[str, str]:
    """(revision, text) of the old reader."""
    if rev is None:
        # The commit that brought the pyarrow reader into files.py (since split into zoo/data/csv_reader.py).
        added = _git("log", "--reverse", "--format=%H", "-S_read_csv_fast", "--", "zoo/data/files.py").split()
        rev = f"{added[0]}^" if added else "HEAD"
    return rev, _git("show", f"{rev}:zoo/data/files.py")


def run_child(kind: str, path: Path, old_text: str) -> dict:
    """One fresh interpreter: wall time and peak memory of load_file (or of the imports alone, for a baseline)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    p = subprocess.run([sys.executable, "-c", CHILD, kind, str(path), TARGET], input=old_text if "old" in kind else "",
                       capture_output=True, text=True, cwd=ROOT, env=env)
    if p.returncode:
        raise SystemExit(f"{kind} run failed:\n{p.stderr}")
    return json.loads(p.stdout)


def machine(versions: dict[str, str]) -> str:
    """CPU model, cores, Python and library versions (as a child imported them)."""
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor())
    libs = ", ".join(f"{m} {v}" for m, v in sorted(versions.items()))
    return f"{cpu}, {os.cpu_count()} cores; Python {platform.python_version()}, {libs}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_700_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--old-rev", help="git revision of the old zoo/data/files.py (default: see above)")
    ap.add_argument("--generate", metavar="PATH", help=argparse.SUPPRESS)  # the child that writes the CSV
    args = ap.parse_args()
    if args.generate:
        return generate(Path(args.generate), args.rows)

    path = OUT / f"data-{args.rows}.csv"
    subprocess.run([sys.executable, __file__, "--generate", str(path), "--rows", str(args.rows)], check=True)
    size = path.stat().st_size
    rev, old_text = old_source(args.old_rev)
    print(f"{path}: {args.rows:,} rows, {size / 1e6:.1f} MB; old reader: {rev}", flush=True)

    runs: dict[str, list[dict]] = {k: [] for k in ("old", "new", "baseline-old", "baseline-new")}
    for i in range(args.repeats):  # interleaved, so drift in the machine's load hits both readers
        for kind in runs:
            runs[kind].append(run_child(kind, path, old_text))
            r = runs[kind][-1]
            print(f"  repeat {i + 1} {kind:13s} " + (f"{r['wall_s']:7.2f} s  " if "wall_s" in r else " " * 11)
                  + f"peak {r['peak_kib'] * 1024 / 1e6:7.1f} MB", flush=True)
    prints = {r["fingerprint"] for k in ("old", "new") for r in runs[k]}
    if len(prints) != 1:
        raise SystemExit(f"old and new readers gave different datasets: {prints}")

    med = {k: {m: statistics.median(r[m] for r in v) for m in ("wall_s", "peak_kib") if m in v[0]}
           for k, v in runs.items()}
    mb = {k: v["peak_kib"] * 1024 / 1e6 for k, v in med.items()}
    file_mb = size / 1e6
    where = machine(runs["new"][0]["versions"])
    result = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": where, "old_rev": rev, "rows": args.rows,
        "file_bytes": size, "repeats": args.repeats, "runs": runs, "medians": med,
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"csv_bench-{time.strftime('%Y%m%dT%H%M%S')}.json").write_text(json.dumps(result, indent=1))

    print("\n| rows | file MB | old s | new s | speed-up | old peak MB | new peak MB | new peak / file size |")
    print("|---|---|---|---|---|---|---|---|")
    old_s, new_s = med["old"]["wall_s"], med["new"]["wall_s"]
    print(f"| {args.rows:,} | {file_mb:.1f} | {old_s:.2f} | {new_s:.2f} | {old_s / new_s:.1f}x | {mb['old']:.0f} | "
          f"{mb['new']:.0f} | {mb['new'] / file_mb:.2f}x |")
    print("\n| reader | baseline MB (imports only) | peak MB | peak - baseline MB | (peak - baseline) / file size |")
    print("|---|---|---|---|---|")
    for k in ("old", "new"):
        above = mb[k] - mb[f"baseline-{k}"]
        print(f"| {k} | {mb[f'baseline-{k}']:.0f} | {mb[k]:.0f} | {above:.0f} | {above / file_mb:.2f}x |")
    print(f"\n{where}. MB = 10^6 bytes; medians of {args.repeats} runs; same Dataset fingerprint from both readers.")


if __name__ == "__main__":
    main()
