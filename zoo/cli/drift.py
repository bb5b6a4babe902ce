"""`zoo drift NAME --log DIR`: how the requests in a payload log compare with the model's training data, and, given
the true labels, how accurate its answers were over time."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import click
import numpy as np

from zoo.cli.common import fail
from zoo.core import reference, repository

SHOWN_FEATURES = 20  # the features that moved most; --all shows every one
TIME_BUCKETS = 10


@dataclass
class Served:
    """The rows of one model's logged requests, in time order."""

    version: int
    x: np.ndarray  # [N, F]
    labels: np.ndarray | None  # [N] predicted labels, None when the log's requests did not ask for them
    request_ids: list[str]  # [N] the id of each row's request
    times: list[str]  # [N] the time of each row's request (ISO 8601 UTC)


def read_log(folder: Path, name: str) -> dict[int, Served]:
    """Every logged row of model `name`, by version."""
    files = sorted(folder.glob("payloads-*.jsonl"))
    if not files:
        raise click.ClickException(f"{folder}: no payload log files (payloads-*.jsonl); serve with --payload-log {folder}")
    rows: dict[int, list] = {}
    for path in files:
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                try:
                    r = json.loads(line)
                except ValueError:
                    raise click.ClickException(f"{path}:{number}: not a JSON line") from None
                if r.get("model") == name:
                    rows.setdefault(int(r["version"]), []).append(r)
    out = {}
    for version, records in rows.items():
        records.sort(key=lambda r: r["time"])
        x = np.concatenate([np.asarray(r["inputs"], dtype=np.float64) for r in records])
        have_labels = all("label" in r["outputs"] for r in records)
        labels = np.concatenate([np.asarray(r["outputs"]["label"], dtype=np.int64) for r in records]) if have_labels else None
        ids = [r["id"] for r in records for _ in r["inputs"]]
        times = [r["time"] for r in records for _ in r["inputs"]]
        out[version] = Served(version, x, labels, ids, times)
    return out


def read_labels(path: Path, target: str, served: Served, class_names: list[str]) -> np.ndarray:
    """The true class index of each served row, joined on the request id (a column `id`) or else by row order."""
    with open(path, newline="", encoding="utf-8") as f:
        table = list(csv.DictReader(f))
    if not table or target not in table[0]:
        columns = ", ".join(table[0]) if table else "none"
        raise click.ClickException(f"{path}: no column {target!r} (columns: {columns})")
    index = {n: i for i, n in enumerate(class_names)}

    def as_class(text: str) -> int:
        text = text.strip()
        if text in index:
            return index[text]
        if text.lstrip("-").isdigit() and 0 <= int(text) < len(class_names):
            return int(text)
        raise click.ClickException(f"{path}: label {text!r} is not one of the model's classes ({', '.join(class_names)})")

    if "id" in table[0]:
        by_id: dict[str, list[int]] = {}
        for row in table:
            by_id.setdefault(row["id"], []).append(as_class(row[target]))
        seen: dict[str, int] = {}
        out = []
        for rid in served.request_ids:
            k = seen.get(rid, 0)
            labels = by_id.get(rid, [])
            out.append(labels[k] if k < len(labels) else -2)  # -2: no label for this row
            seen[rid] = k + 1
        return np.asarray(out)
    if len(table) != len(served.x):
        raise click.ClickException(
            f"{path}: {len(table)} labels for {len(served.x)} logged rows; add an `id` column (the request id) to join on it"
        )
    return np.asarray([as_class(row[target]) for row in table])


@click.command()
@click.argument("name")
@click.option(
    "--log",
    "log_dir",
    required=True,
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="Payload log folder (zoo serve --payload-log DIR).",
)
@click.option(
    "--repository",
    "repository_dir",
    default="models",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Model repository holding the exported versions.",
)
@click.option(
    "--labels",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="CSV of true labels: joined on its `id` column (the request id), else row by row.",
)
@click.option("--target", help="Column of --labels holding the true class.")
@click.option("--all", "show_all", is_flag=True, help=f"Show every feature, not only the {SHOWN_FEATURES} that moved most.")
@click.option(
    "--plot", type=click.Path(dir_okay=False, path_type=Path), help="Write a PNG: drift per feature (and accuracy over time with --labels)."
)
def drift(name, log_dir, repository_dir, labels, target, show_all, plot) -> None:
    """Compare the requests a model answered (its payload log) with its training data."""
    if bool(labels) != bool(target):
        fail("--labels and --target go together: the file of true labels and the column that holds them")
    for version, served in sorted(read_log(log_dir, name).items()):
        try:
            card = repository.read_card(repository_dir, name, version)
        except (OSError, ValueError) as e:
            fail(f"model {name} version {version} (in the log): cannot read its card from {repository_dir}: {e}")
        ref = reference.parse(card.extra, card.num_features, card.num_classes)
        requests = len(dict.fromkeys(served.request_ids))
        click.echo(f"{name} v{version}: {len(served.x):,} rows in {requests:,} requests, {served.times[0]} to {served.times[-1]}")
        if ref is None:
            click.echo("  no training reference: this version was exported before zoo recorded one; re-export it to compare")
            continue
        index = reference.psi(reference.bin_counts(served.x, ref), len(served.x), ref)
        outside = ref.outside(served.x) / len(served.x)
        order = np.argsort(-index, kind="stable")
        shown = order if show_all else order[:SHOWN_FEATURES]
        width = max(len(card.feature_names[f]) for f in shown)
        click.echo(f"  {'feature':<{width}}  {'PSI':>6}  {'outside training range':>22}  {'served mean':>11}  {'training mean':>13}")
        means = card.extra.get(reference.KEY, {}).get("mean", [float("nan")] * card.num_features)
        for f in shown:
            verdict = "  shifted" if index[f] > 0.25 else "  moving" if index[f] > 0.1 else ""
            click.echo(
                f"  {card.feature_names[f]:<{width}}  {index[f]:6.3f}  {100 * outside[f]:21.1f}%  {served.x[:, f].mean():11.4g}  "
                f"{means[f]:13.4g}{verdict}"
            )
        if len(shown) < len(order):
            click.echo(f"  ... {len(order) - len(shown)} more features (--all shows them)")
        if served.labels is not None:
            mix = np.bincount(served.labels + 1, minlength=card.num_classes + 1) / len(served.labels)
            parts = [f"{c} {100 * mix[i + 1]:.1f}% (training {100 * ref.class_mix[i]:.1f}%)" for i, c in enumerate(card.class_names)]
            if mix[0]:
                parts.append(f"no class {100 * mix[0]:.1f}%")
            click.echo("  predicted: " + ", ".join(parts))
        accuracy = None
        if labels is not None:
            accuracy = _accuracy_over_time(read_labels(labels, target, served, card.class_names), served)
        if plot is not None:
            _plot(plot, card.feature_names, index, order[:SHOWN_FEATURES], accuracy, f"{name} v{version}")


def _accuracy_over_time(truth: np.ndarray, served: Served) -> list[tuple[str, float, int]]:
    """Accuracy of the logged answers in up to TIME_BUCKETS equal runs of rows, in time order; printed as it goes."""
    if served.labels is None:
        raise click.ClickException("the log's requests did not ask for `label`: accuracy needs the answers' labels")
    known = truth >= -1
    buckets = [b for b in np.array_split(np.flatnonzero(known), min(TIME_BUCKETS, int(known.sum()))) if len(b)]
    out = []
    click.echo(f"  accuracy over time ({int(known.sum()):,} labelled rows):")
    for b in buckets:
        acc = float((served.labels[b] == truth[b]).mean())
        out.append((served.times[b[0]], acc, len(b)))
        click.echo(f"    from {served.times[b[0]]}  {100 * acc:5.1f}%  ({len(b):,} rows)")
    return out


def _plot(path: Path, features: list[str], index: np.ndarray, top: np.ndarray, accuracy, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = 2 if accuracy else 1
    fig, axes = plt.subplots(panels, 1, figsize=(8, 3.2 * panels), squeeze=False)
    ax = axes[0][0]
    ax.barh([features[f] for f in top][::-1], index[top][::-1], color="#0b5cad")
    ax.axvline(0.1, color="#999", linestyle=":", label="0.1: moving")
    ax.axvline(0.25, color="#8a1c1c", linestyle="--", label="0.25: shifted")
    ax.set_xlabel("population stability index against training")
    ax.set_title(f"{title}: drift per feature")
    ax.legend(loc="lower right")
    if accuracy:
        ax = axes[1][0]
        ax.plot(range(len(accuracy)), [a for _t, a, _n in accuracy], marker="o")
        ax.set_xticks(range(len(accuracy)), [t[11:19] for t, _a, _n in accuracy], rotation=30)
        ax.set_ylim(0, 1.02)
        ax.set_ylabel("accuracy")
        ax.set_title("accuracy over time (labelled rows)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    click.echo(f"wrote {path}")
