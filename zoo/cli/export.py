"""`zoo export`: a training run to ONNX as the next version in the repository, calibrated and parity-checked."""

from __future__ import annotations

import click

from zoo.cli.common import DEFAULT_REPOSITORY, DEFAULT_RUNS, fail


@click.command()
@click.argument("name")
@click.option("--runs", "runs_dir", default=DEFAULT_RUNS, show_default=True)
@click.option("--repository", default=DEFAULT_REPOSITORY, show_default=True)
@click.option("--run", "run_path", type=click.Path(file_okay=False, exists=True), help="Export this run folder instead of the latest.")
@click.option(
    "--threshold",
    help="Default decision threshold baked into the graph: a number in [0, 1], one per class (multilabel, comma-separated), "
    "or auto (chosen on the validation split). Default: the task's (0 multiclass, 0.5 otherwise).",
)
@click.option("--target-precision", type=click.FloatRange(0, 1), help="Choose the lowest threshold with this validation precision.")
@click.option("--target-recall", type=click.FloatRange(0, 1), help="Choose the highest threshold with this validation recall.")
@click.option(
    "--calibration",
    type=click.Choice(["temperature", "none"]),
    default="temperature",
    show_default=True,
    help="Temperature scaling fitted on the validation split, baked in before the softmax/sigmoid.",
)
def export(name, runs_dir, repository, run_path, threshold, target_precision, target_recall, calibration) -> None:
    """Export the latest run of NAME to ONNX as the next version in the repository (parity-checked)."""
    from zoo.training.checkpoint import latest_run, load_run
    from zoo.training.decisions import parse_threshold
    from zoo.training.export import ExportError, export_run

    try:
        run = load_run(run_path or latest_run(runs_dir, name))
        result = export_run(
            run,
            repository,
            name=name,
            threshold=parse_threshold(threshold),
            calibration=calibration,
            target_precision=target_precision,
            target_recall=target_recall,
        )
    except (FileNotFoundError, ExportError, ValueError) as e:
        fail(str(e))
    p = result.parity
    click.echo(f"exported {result.name} version {result.version} -> {result.path}")
    click.echo(
        f"parity on {p['rows']} held-out rows: max |p_torch - p_onnx| = {p['max_abs_diff_probabilities']:.2e} "
        f"(<= {p['tolerance']:.0e}), one-hot agreement {p['one_hot_agreement']:.0%}, batch-invariant"
    )
    for line in describe(result.metadata):
        click.echo(line)


def describe(meta: dict) -> list[str]:
    """The calibration and operating point in a line each."""
    lines = []
    c = meta.get("calibration") or {}
    if c.get("reason"):
        click.secho(f"warning: {c['reason']}", fg="yellow", err=True)
    elif c.get("method") == "temperature":
        lines.append(
            f"calibration: temperature {c['temperature']:.3f}; test ECE {c['test_ece_before']:.4f} -> {c['test_ece_after']:.4f}, "
            f"NLL {c['test_nll_before']:.4f} -> {c['test_nll_after']:.4f}"
        )
    op = meta.get("operating_point") or {}
    t = meta.get("default_threshold")
    shown = ", ".join(f"{v:.4g}" for v in t) if isinstance(t, list) else f"{t:.4g}"
    test = op.get("test") or {}
    if "per_class" in test:
        scores = "; ".join(f"{n}: precision {s['precision']:.3f}, recall {s['recall']:.3f}" for n, s in test["per_class"].items())
    else:
        scores = ", ".join(f"{k} {test[k]:.3f}" for k in ("precision", "recall", "f1", "coverage") if k in test)
    lines.append(f"threshold {shown} ({op.get('chosen_by', 'task default')}); test split: {scores}")
    return lines
