"""Looking at models: `zoo list`, `zoo info` and `zoo evaluate` (torch-free: onnxruntime scores the exported model)."""

from __future__ import annotations

import json

import click

from zoo.cli.common import DEFAULT_REPOSITORY, DEFAULT_RUNS, card_of, fail


@click.command("list")
@click.option("--repository", default=DEFAULT_REPOSITORY, show_default=True, help="Model repository folder.")
@click.option("--runs", "runs_dir", default=DEFAULT_RUNS, show_default=True, help="Training runs folder.")
def list_cmd(repository: str, runs_dir: str) -> None:
    """List the recipes, the training runs and the repository's models and versions."""
    from zoo.core import repository as repo
    from zoo.data.recipes import RECIPES

    click.echo("recipes:")
    for r in RECIPES.values():
        click.echo(f"  {r.name:<14} {r.summary}")
    try:
        from zoo.training.checkpoint import list_runs
    except ImportError:  # a serve-only install: no torch, no runs to read
        runs = {}
    else:
        runs = list_runs(runs_dir)
    click.echo(f"runs ({runs_dir}):" + ("" if runs else " none"))
    for name, ids in runs.items():
        click.echo(f"  {name:<14} {len(ids)} run(s), latest {ids[-1]}")
    names = repo.model_names(repository)
    click.echo(f"models ({repository}):" + ("" if names else " none"))
    for name in names:
        click.echo(f"  {name:<14} versions {', '.join(map(str, repo.versions(repository, name)))}")


@click.command()
@click.argument("name")
@click.option("--version", type=click.IntRange(1), help="Model version (default: latest).")
@click.option("--repository", default=DEFAULT_REPOSITORY, show_default=True)
@click.option(
    "--data",
    "data_file",
    type=click.Path(dir_okay=False),
    help="Labelled file to score (default: the test split the model was trained with).",
)
@click.option("--target", help="Label column of --data.")
@click.option(
    "--plot",
    type=click.Path(dir_okay=False),
    help="Write the confusion matrix as a PNG here, and beside it the reliability diagram and precision-recall curve.",
)
@click.option("--threshold", help="Decide at this threshold (one per class for multilabel, comma-separated) instead of the model's.")
def evaluate(name, version, repository, data_file, target, plot, threshold) -> None:
    """Score an exported model with onnxruntime: accuracy, confusion matrix, per-class precision, recall and F1,
    calibration (ECE) and coverage at the model's thresholds (or --threshold).

    Without --data, the test split is rebuilt from what training recorded (the recipe, or your file, its target
    column and split), so it never includes a training row.
    """
    import numpy as np

    from zoo.data import DataError
    from zoo.evaluate import align_features, encode_labels, training_overlap
    from zoo.evaluate import evaluate as run_eval

    card = card_of(repository, name, version)
    try:
        if data_file:
            from zoo.data.files import read_rows

            if not target:
                fail("--data needs --target COLUMN")
            X, names, raw = read_rows(data_file, target)
            assert raw is not None  # a target was named
            X, y = align_features(X, names, card, data_file), encode_labels(raw, card, data_file)
            source = data_file
            overlap, why = training_overlap(card, X)
            if overlap:
                click.secho(
                    f"warning: {overlap} of the {len(X)} rows of {data_file} were training rows of {name}: "
                    "the accuracy below is optimistic",
                    fg="yellow",
                    err=True,
                )
            elif why:
                click.secho(f"note: cannot check {data_file} against the training rows: {why}", fg="yellow", err=True)
        else:
            from zoo.data import origin

            data = origin.load(card.extra.get("dataset_origin") or {"recipe": card.extra.get("dataset") or name}, name=name)
            X, y = data.X_test, data.y_test
            source = f"{card.extra.get('dataset') or name} test split"
            if data.fingerprint() != card.extra.get("dataset_fingerprint"):
                click.secho(f"warning: the data differs from what {name} was trained on", fg="yellow", err=True)
        ev = run_eval(repository, name, card.version, np.asarray(X, dtype=np.float32), y, card)
        from zoo import decision_report
        from zoo.core import decision
        from zoo.evaluate import run_model

        t = decision_report.parse_threshold(threshold)
        t = card.default_threshold if t is None else t
        decision.as_threshold(t, card.task, card.num_classes)  # ValueError: a list for a model that takes one number
        p = run_model(repository, card, np.asarray(X, dtype=np.float32))["probabilities"]
        facts = decision_report.report(p, y, card.task, t, card.class_names)
    except (DataError, KeyError, ValueError) as e:
        fail(str(e.args[0]) if isinstance(e, KeyError) else str(e))
    from zoo.plots import confusion_matrix_png, format_confusion_matrix

    click.echo(f"{name} v{card.version} on {source}: accuracy {ev.accuracy:.4f} ({ev.rows} rows)")
    if ev.confusion is not None:
        click.echo(format_confusion_matrix(ev.confusion, card.class_names))
        if plot:
            from zoo.core.atomic import write_bytes

            write_bytes(plot, confusion_matrix_png(ev.confusion, card.class_names, f"{name} v{card.version}: {source}"))
            click.echo(f"confusion matrix -> {plot}")
    click.echo(decision_report.format_report(facts))
    if plot:
        _plot_decisions(plot, p, y, card, source)


def _plot_decisions(plot: str, p, y, card, source: str) -> None:
    """The reliability diagram and precision-recall curve, beside --plot's file."""
    from pathlib import Path

    from zoo import decision_report
    from zoo.core.atomic import write_bytes
    from zoo.decision_plots import pr_curve_png, reliability_png

    base = Path(plot)
    title = f"{card.name} v{card.version}: {source}"
    for suffix, png in (
        ("reliability", reliability_png({"served": (p, y)}, card.task, title)),
        ("precision_recall", pr_curve_png(decision_report.curves(p, y, card.task, card.class_names), title)),
    ):
        path = base.with_name(f"{base.stem}_{suffix}.png")
        write_bytes(path, png)
        click.echo(f"{suffix.replace('_', '-')} -> {path}")


@click.command()
@click.argument("name")
@click.option("--version", type=click.IntRange(1), help="Model version (default: latest).")
@click.option("--repository", default=DEFAULT_REPOSITORY, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the whole metadata as JSON.")
def info(name, version, repository, as_json) -> None:
    """Print an exported model's metadata."""
    card = card_of(repository, name, version)
    d = card.extra
    if as_json:
        click.echo(json.dumps({k: v for k, v in d.items() if k != "selfcheck"}, indent=2))
        return
    m = d.get("metrics", {})
    arch = d.get("architecture", {})
    p = d.get("parity", {})
    rows = [
        ("model", f"{card.name} v{card.version} ({card.task})"),
        ("input", f"FP32 [-1, {card.num_features}]: {', '.join(card.feature_names[:8])}{', ...' if card.num_features > 8 else ''}"),
        ("classes", ", ".join(card.class_names)),
        ("threshold", str(card.default_threshold)),
        ("architecture", f"hidden {arch.get('hidden')}, {arch.get('activation')}, {arch.get('parameters'):,} parameters" if arch else "?"),
        ("test accuracy", f"{m.get('test_accuracy', float('nan')):.4f}"),
        ("dataset", f"{d.get('dataset')} (fingerprint {str(d.get('dataset_fingerprint'))[:12]})"),
        ("seed", str(d.get("seed"))),
        ("parity", f"max diff {p.get('max_abs_diff_probabilities', float('nan')):.1e} on {p.get('rows')} rows, passed={p.get('passed')}"),
        ("versions", f"torch {d.get('torch_version')}, onnx {d.get('onnx_version')}, opset {d.get('opset')}"),
        ("source commit", str(d.get("source_commit"))),
        ("sha256", card.model_sha256),
    ]
    for k, v in rows:
        click.echo(f"{k + ':':<15} {v}")
