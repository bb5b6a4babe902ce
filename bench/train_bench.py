"""Training benchmark: zoo's fit vs scikit-learn's MLPClassifier vs a textbook DataLoader loop.

Same data, architecture, batch size, epochs, optimizer (Adam) and learning rate; each measurement runs in a
fresh subprocess (thread settings and allocator state don't leak), tools interleaved within each repeat so
drift hits all of them, medians of --repeats. Every tool runs at its own default thread count.
    python bench/train_bench.py [--datasets digits,mnist] [--repeats 3] [--write bench/RESULTS.md]
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

TOOLS = ("zoo", "sklearn", "textbook")
SETTINGS = {  # equal settings for every tool: 64-100-10 and 784-100-10, Adam 1e-3 (the old recipes' defaults)
    "digits": dict(hidden=(100,), epochs=30, batch_size=32, lr=1e-3),
    "mnist": dict(hidden=(100,), epochs=20, batch_size=64, lr=1e-3),
    "fashion-mnist": dict(hidden=(100,), epochs=5, batch_size=64, lr=1e-3),
}
LIMITS = {"digits": 1.0, "mnist": 0.75, "fashion-mnist": 0.75}  # zoo's time per trained row / scikit-learn's, at most


def _load(name):
    from zoo.data import get_recipe
    from zoo.training.model import fit_normalization
    import numpy as np

    data = get_recipe(name).load()
    norm = get_recipe(name).defaults.get("normalize", "feature")
    mean, std = (np.asarray(v, dtype=np.float32) for v in fit_normalization(data.X_train, norm))
    return data, norm, (data.X_train - mean) / std, (data.X_test - mean) / std


def run_zoo(name, s, seed):
    from zoo.training.loop import TrainConfig, fit

    data, norm, _, _ = _load(name)
    cfg = TrainConfig(hidden=s["hidden"], epochs=s["epochs"], batch_size=s["batch_size"], lr=s["lr"], seed=seed,
                      val_fraction=0.0, normalize=norm)
    t = time.perf_counter()
    res = fit(data, cfg)
    return time.perf_counter() - t, res.metrics["test_accuracy"], res.metrics["threads"]


def run_sklearn(name, s, seed):
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    data, _, Xtr, Xte = _load(name)
    clf = MLPClassifier(hidden_layer_sizes=s["hidden"], batch_size=s["batch_size"], max_iter=s["epochs"],
                        learning_rate_init=s["lr"], alpha=0.0, solver="adam", shuffle=True, random_state=seed,
                        tol=0.0, n_iter_no_change=s["epochs"] + 1, early_stopping=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        t = time.perf_counter()
        clf.fit(Xtr, data.y_train)
        dt = time.perf_counter() - t
    from threadpoolctl import threadpool_info

    threads = max(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")
    return dt, float(clf.score(Xte, data.y_test)), threads


def run_textbook(name, s, seed):
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    data, _, Xtr, Xte = _load(name)
    torch.manual_seed(seed)
    layers, width = [], Xtr.shape[1]
    for h in s["hidden"]:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    model = nn.Sequential(*layers, nn.Linear(width, data.num_classes))
    opt = torch.optim.Adam(model.parameters(), lr=s["lr"])
    loss_fn = nn.CrossEntropyLoss()
    loader = DataLoader(TensorDataset(torch.as_tensor(Xtr), torch.as_tensor(data.y_train)), batch_size=s["batch_size"], shuffle=True)
    t = time.perf_counter()
    for _ in range(s["epochs"]):
        for xb, yb in loader:
            opt.zero_grad()
            loss_fn(model(xb), yb).backward()
            opt.step()
    dt = time.perf_counter() - t
    with torch.no_grad():
        acc = float((model(torch.as_tensor(Xte)).argmax(1).numpy() == data.y_test).mean())
    return dt, acc, torch.get_num_threads()


def one(tool, name, seed) -> dict:
    """Run one measurement in this process; returns seconds, accuracy and threads."""
    seconds, acc, threads = globals()[f"run_{tool}"](name, SETTINGS[name], seed)
    return {"tool": tool, "dataset": name, "seed": seed, "seconds": seconds, "accuracy": acc, "threads": threads}


def machine() -> str:
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
    import numpy, sklearn, torch

    return (f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, torch {torch.__version__}, "
            f"scikit-learn {sklearn.__version__}, numpy {numpy.__version__}")


def table(results: list[dict], repeats: int) -> str:
    lines = ["| dataset (arch, batch, epochs) | tool | threads | wall s (median) | test accuracy (median) | zoo speed-up | zoo / sklearn time (limit) |",
             "|---|---|---|---|---|---|---|"]
    for name, s in SETTINGS.items():
        med: dict = {}
        for tool in TOOLS:
            rows = [r for r in results if r["tool"] == tool and r["dataset"] == name]
            if rows:
                med[tool] = (statistics.median(r["seconds"] for r in rows), statistics.median(r["accuracy"] for r in rows), rows[0]["threads"])
        for tool, (sec, acc, threads) in med.items():
            arch = f"{name} ({'-'.join(map(str, ['F', *s['hidden'], 'C']))}, {s['batch_size']}, {s['epochs']})"
            ratio = "1.00x" if tool == "zoo" else f"{sec / med['zoo'][0]:.2f}x"
            versus = ""
            if tool == "sklearn":
                share = med["zoo"][0] / sec
                versus = f"{share:.2f}x (<= {LIMITS[name]:.2f}x: {'PASS' if share <= LIMITS[name] else 'FAIL'})"
            lines.append(f"| {arch} | {tool} | {threads} | {sec:.2f} | {acc:.4f} | {ratio} | {versus} |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", default="digits,mnist,fashion-mnist")
    ap.add_argument("--tools", default=",".join(TOOLS), help="which of zoo, sklearn, textbook to run")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--write", help="replace the '## Training' section of this markdown file")
    ap.add_argument("--one", nargs=3, metavar=("TOOL", "DATASET", "SEED"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(args.one[0], args.one[1], int(args.one[2]))))
        return 0
    results = []
    for rep in range(args.repeats):
        for name in args.datasets.split(","):
            for tool in args.tools.split(","):
                out = subprocess.run([sys.executable, __file__, "--one", tool, name, str(rep)], capture_output=True, text=True, check=True)
                r = json.loads(out.stdout.strip().splitlines()[-1])
                print(f"repeat {rep}: {name:<7} {tool:<9} {r['seconds']:7.2f}s  acc {r['accuracy']:.4f}", file=sys.stderr)
                results.append(r)
    out_dir = Path(__file__).parent / "out"
    out_dir.mkdir(exist_ok=True)
    (out_dir / "train_bench.json").write_text(json.dumps(results, indent=2))
    text = (f"## Training\n\nzoo `fit` vs scikit-learn `MLPClassifier` vs a textbook `DataLoader` loop: same data, architecture, "
            f"batch size, epochs, Adam and learning rate, no weight decay; wall time of training only, medians of {args.repeats} "
            f"runs (seeds 0..{args.repeats - 1}), each in a fresh process, tools interleaved.\n\n"
            f"Machine: {machine()}. Date: {time.strftime('%Y-%m-%d')}. Command: `python bench/train_bench.py --repeats {args.repeats}`.\n\n"
            f"{table(results, args.repeats)}\n")
    print(text)
    if args.write:
        replace_section(Path(args.write), "## Training", text)
    return 0


def replace_section(path: Path, heading: str, text: str) -> None:
    """Put `text` in place of the section starting at `heading` (up to the next '## '), or prepend it."""
    old = path.read_text() if path.exists() else "# Benchmarks\n\n"
    if heading in old:
        start = old.index(heading)
        nxt = old.find("\n## ", start + len(heading))
        new = old[:start] + text.rstrip() + "\n" + ("" if nxt < 0 else old[nxt:])
    else:
        head, _, rest = old.partition("\n## ")
        new = head.rstrip() + "\n\n" + text.rstrip() + "\n" + (("\n## " + rest) if rest else "")
    path.write_text(new)


if __name__ == "__main__":
    sys.exit(main())
