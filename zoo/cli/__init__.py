"""The `zoo` command line: list, train, export, evaluate, info, serve, predict."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

DEFAULT_RUNS = "runs"
DEFAULT_REPOSITORY = "models"


def _fail(message: str) -> None:
    """Print a one-line error and exit 1 (no traceback for errors the user can fix)."""
    click.secho(f"error: {message}", fg="red", err=True)
    sys.exit(1)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="zoo")
def main() -> None:
    """zoo: train PyTorch MLP classifiers, export them to ONNX, serve them over KServe v2 gRPC."""


@main.command("list")
@click.option("--repository", default=DEFAULT_REPOSITORY, show_default=True, help="Model repository folder.")
@click.option("--runs", "runs_dir", default=DEFAULT_RUNS, show_default=True, help="Training runs folder.")
def list_cmd(repository: str, runs_dir: str) -> None:
    """List the recipes, the training runs and the repository's models and versions."""
    from zoo.core import repository as repo
    from zoo.data.recipes import RECIPES

    click.echo("recipes:")
    for r in RECIPES.values():
        click.echo(f"  {r.name:<14} {r.summary}")
    from zoo.training.checkpoint import list_runs

    runs = list_runs(runs_dir)
    click.echo(f"runs ({runs_dir}):" + ("" if runs else " none"))
    for name, ids in runs.items():
        click.echo(f"  {name:<14} {len(ids)} run(s), latest {ids[-1]}")
    names = repo.model_names(repository)
    click.echo(f"models ({repository}):" + ("" if names else " none"))
    for name in names:
        click.echo(f"  {name:<14} versions {', '.join(map(str, repo.versions(repository, name)))}")


def _parse_hidden(value: str | None):
    if value is None:
        return None
    try:
        sizes = tuple(int(v) for v in value.split(",") if v.strip())
    except ValueError:
        raise click.BadParameter(f"expected comma-separated widths like 256,128; got {value!r}") from None
    if any(s <= 0 for s in sizes):
        raise click.BadParameter(f"layer widths must be positive; got {value!r}")
    return sizes


@main.command()
@click.argument("recipe", required=False)
@click.option("--data", "data_file", type=click.Path(dir_okay=False), help="Your own CSV/NPZ/Parquet file instead of a recipe.")
@click.option("--target", help="Label column of --data (several, comma-separated: multilabel).")
@click.option("--name", help="Model name (default: the recipe, or the data file's stem).")
@click.option("--runs", "runs_dir", default=DEFAULT_RUNS, show_default=True, help="Where runs are written.")
@click.option("--hidden", help="Hidden layer widths, e.g. 256,128 (default: the recipe's).")
@click.option("--activation", type=click.Choice(["relu", "tanh", "sigmoid"]), help="Hidden activation.")
@click.option("--dropout", type=click.FloatRange(0, 0.95), help="Dropout after each hidden layer.")
@click.option("--optimizer", type=click.Choice(["adam", "sgd"]), help="Optimizer (default adam).")
@click.option("--epochs", type=click.IntRange(1), help="Epochs.")
@click.option("--batch-size", type=click.IntRange(1), help="Batch size.")
@click.option("--lr", type=click.FloatRange(0, min_open=True), help="Learning rate.")
@click.option("--weight-decay", type=click.FloatRange(0), help="L2 weight decay.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed (bit-reproducible on CPU).")
@click.option("--val-split", type=click.FloatRange(0, 0.5), default=0.1, show_default=True, help="Share of the training split held out for validation.")
@click.option("--patience", type=click.IntRange(0), default=0, show_default=True, help="Early stopping patience in epochs (0: off).")
@click.option("--normalize", type=click.Choice(["feature", "global", "none"]), help="Input normalisation fitted on the training split.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--threads", type=click.IntRange(0), default=0, show_default=True, help="CPU threads for training (0: auto, by step size).")
@click.option("--data-dir", help="Folder of the Fashion-MNIST IDX files (default /usr/share/datasets/fashion-mnist).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def train(recipe, data_file, target, name, runs_dir, hidden, activation, dropout, optimizer, epochs, batch_size, lr,
          weight_decay, seed, val_split, patience, normalize, device, threads, data_dir, quiet) -> None:
    """Train a recipe (e.g. `zoo train iris`) or your own data (`--data FILE --target COLUMN`)."""
    from zoo.data import DataError, get_recipe, load_file

    if bool(recipe) == bool(data_file):
        _fail("give either a RECIPE or --data FILE --target COLUMN (see `zoo list` for recipes)")
    try:
        if recipe:
            r = get_recipe(recipe)
            if recipe == "fashion-mnist" and data_dir:
                from zoo.data.builtin import fashion_mnist
                data = fashion_mnist(data_dir)
            else:
                data = r.load()
            defaults = dict(r.defaults)
            name = name or recipe
        else:
            data = load_file(data_file, target, name=name)
            defaults = {}
            name = name or Path(data_file).stem
        from zoo.core.repository import check_name
        check_name(name)
    except (KeyError, DataError, ValueError) as e:
        _fail(str(e.args[0]) if isinstance(e, KeyError) else str(e))
    overrides = dict(hidden=_parse_hidden(hidden), activation=activation, dropout=dropout, optimizer=optimizer, epochs=epochs,
                     batch_size=batch_size, lr=lr, weight_decay=weight_decay, normalize=normalize)
    from zoo.training.loop import TrainConfig

    cfg = TrainConfig(**{**defaults, **{k: v for k, v in overrides.items() if v is not None}},
                      seed=seed, val_fraction=val_split, patience=patience, device=device, threads=threads)
    _train_and_save(name, data, cfg, runs_dir, quiet)


def _train_and_save(name, data, cfg, runs_dir, quiet) -> Path | None:
    """Fit, plot, save; prints where the run went and its test accuracy (under torchrun: rank 0 only)."""
    from tqdm import tqdm

    from zoo import plots
    from zoo.training import distributed
    from zoo.training.checkpoint import save_run
    from zoo.training.loop import fit

    ctx = distributed.from_env()
    if ctx is not None and not ctx.is_main:
        try:  # the other ranks train in lock-step and write nothing
            fit(data, cfg)
        finally:
            distributed.shutdown()
        return None

    click.echo(f"training {name}: {len(data.X_train)} rows x {data.num_features} features, {data.num_classes} classes ({data.task}), "
               f"hidden {','.join(map(str, cfg.hidden))}, {cfg.epochs} epochs")
    bar = tqdm(total=cfg.epochs, unit="epoch", disable=True if quiet else None, file=sys.stderr, leave=False)  # None: off when not a TTY

    def on_epoch(row):
        shown = {"loss": f"{row['train_loss']:.4f}", "acc": f"{row['train_accuracy']:.3f}"}
        if "val_accuracy" in row:
            shown["val_acc"] = f"{row['val_accuracy']:.3f}"
        bar.set_postfix(shown)
        bar.update(1)

    try:
        result = fit(data, cfg, on_epoch=on_epoch)
    except (RuntimeError, ValueError) as e:
        bar.close()
        _fail(str(e))
    finally:
        distributed.shutdown()
    bar.close()
    import numpy as np
    import torch

    with torch.no_grad():
        probs = result.model.probabilities(torch.as_tensor(data.X_test)).numpy()
    from zoo.core import decision

    extra = {"training_curve.png": plots.training_curve_png(result.history, f"{name}: training")}
    if data.task != "multilabel":
        pred = decision.labels(probs, data.task, decision.default_threshold(data.task))
        cm = plots.confusion_matrix(np.asarray(data.y_test), pred, data.num_classes)
        extra["confusion_matrix.png"] = plots.confusion_matrix_png(cm, data.class_names, f"{name}: test split")
    path = save_run(runs_dir, name, result.model, data, cfg.to_dict(), result.metrics, result.history, extra)
    m = result.metrics
    ranks = f" on {m['world_size']} ranks" if m.get("world_size", 1) > 1 else ""
    click.echo(f"test accuracy {m['test_accuracy']:.4f} after {m['epochs_run']} epochs in {m['train_seconds']:.1f}s{ranks} "
               f"({m['parameters']:,} parameters) -> {path}")
    return path


@main.command()
@click.argument("name")
@click.option("--runs", "runs_dir", default=DEFAULT_RUNS, show_default=True)
@click.option("--repository", default=DEFAULT_REPOSITORY, show_default=True)
@click.option("--run", "run_path", type=click.Path(file_okay=False, exists=True), help="Export this run folder instead of the latest.")
@click.option("--threshold", type=click.FloatRange(0, 1), help="Default decision threshold baked into the graph.")
def export(name, runs_dir, repository, run_path, threshold) -> None:
    """Export the latest run of NAME to ONNX as the next version in the repository (parity-checked)."""
    from zoo.training.checkpoint import latest_run, load_run
    from zoo.training.export import ExportError, export_run

    try:
        run = load_run(run_path or latest_run(runs_dir, name))
        result = export_run(run, repository, name=name, threshold=threshold)
    except (FileNotFoundError, ExportError, ValueError) as e:
        _fail(str(e))
    p = result.parity
    click.echo(f"exported {result.name} version {result.version} -> {result.path}")
    click.echo(f"parity on {p['rows']} held-out rows: max |p_torch - p_onnx| = {p['max_abs_diff_probabilities']:.2e} "
               f"(<= {p['tolerance']:.0e}), one-hot agreement {p['one_hot_agreement']:.0%}, batch-invariant")


def _card(repository, name, version):
    from zoo.core import repository as repo
    from zoo.evaluate import resolve_version

    try:
        v = resolve_version(repository, name, version)
        return repo.read_card(repository, name, v)
    except (FileNotFoundError, ValueError) as e:
        _fail(str(e))


@main.command()
@click.argument("name")
@click.option("--version", type=click.IntRange(1), help="Model version (default: latest).")
@click.option("--repository", default=DEFAULT_REPOSITORY, show_default=True)
@click.option("--data", "data_file", type=click.Path(dir_okay=False), help="Labelled file to score (default: the recipe's test split).")
@click.option("--target", help="Label column of --data.")
@click.option("--plot", type=click.Path(dir_okay=False), help="Write the confusion matrix as a PNG here.")
def evaluate(name, version, repository, data_file, target, plot) -> None:
    """Score an exported model with onnxruntime: accuracy and confusion matrix."""
    import numpy as np

    from zoo.data import DataError
    from zoo.evaluate import align_features, encode_labels, evaluate as run_eval

    card = _card(repository, name, version)
    try:
        if data_file:
            from zoo.data.files import read_rows

            X, names, raw = read_rows(data_file, target or _fail("--data needs --target COLUMN"))
            X, y = align_features(X, names, card, data_file), encode_labels(raw, card, data_file)
            source = data_file
        else:
            from zoo.data import get_recipe

            recipe = card.extra.get("dataset") or name
            data = get_recipe(recipe).load()
            X, y, source = data.X_test, data.y_test, f"{recipe} test split"
            if data.fingerprint() != card.extra.get("dataset_fingerprint"):
                click.secho(f"warning: the {recipe} data differs from what {name} was trained on", fg="yellow", err=True)
        ev = run_eval(repository, name, card.version, np.asarray(X, dtype=np.float32), y, card)
    except (DataError, KeyError, ValueError) as e:
        _fail(str(e.args[0]) if isinstance(e, KeyError) else str(e))
    from zoo.plots import confusion_matrix_png, format_confusion_matrix

    click.echo(f"{name} v{card.version} on {source}: accuracy {ev.accuracy:.4f} ({ev.rows} rows)")
    if ev.confusion is not None:
        click.echo(format_confusion_matrix(ev.confusion, card.class_names))
        if plot:
            from zoo.core.atomic import write_bytes

            write_bytes(plot, confusion_matrix_png(ev.confusion, card.class_names, f"{name} v{card.version}: {source}"))
            click.echo(f"confusion matrix -> {plot}")


@main.command()
@click.argument("name")
@click.option("--version", type=click.IntRange(1), help="Model version (default: latest).")
@click.option("--repository", default=DEFAULT_REPOSITORY, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the whole metadata as JSON.")
def info(name, version, repository, as_json) -> None:
    """Print an exported model's metadata."""
    card = _card(repository, name, version)
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


def bootstrap_default_zoo(repository: str, runs_dir: str, echo=click.echo) -> list[str]:
    """Train and export the default zoo's recipes that the repository lacks; returns their names."""
    from zoo.core import repository as repo
    from zoo.training.checkpoint import load_run
    from zoo.data.recipes import DEFAULT_ZOO, get_recipe
    from zoo.training.export import export_run
    from zoo.training.loop import TrainConfig

    made = []
    for name in DEFAULT_ZOO:
        if repo.versions(repository, name):
            continue
        r = get_recipe(name)
        path = _train_and_save(name, r.load(), TrainConfig(**r.defaults), runs_dir, quiet=True)
        result = export_run(load_run(path), repository, name=name)
        echo(f"exported {name} v{result.version} -> {result.path}")
        made.append(name)
    return made


@main.command()
@click.option("--repository", default=None, help="Model repository (env ZOO_REPOSITORY, default ./models).")
@click.option("--runs", "runs_dir", default=DEFAULT_RUNS, show_default=True, help="Where bootstrap training runs go.")
@click.option("--host", default=None, help="gRPC bind address (env ZOO_HOST, default 0.0.0.0).")
@click.option("--port", type=int, default=None, help="gRPC port (env ZOO_PORT, default 8001; 0 = any free port).")
@click.option("--metrics-port", type=int, default=None, help="Prometheus port (env ZOO_METRICS_PORT, default 8002; -1 = off).")
@click.option("--max-batch-size", type=click.IntRange(1), default=None, help="Rows per onnxruntime call (env ZOO_MAX_BATCH_SIZE).")
@click.option("--max-queue-delay-us", type=click.IntRange(0), default=None, help="How long a batch waits for more rows (env ZOO_MAX_QUEUE_DELAY_US).")
@click.option("--require-gpu", is_flag=True, default=None, help="Fail at start-up unless the CUDA provider is really in use.")
@click.option("--poll-interval", type=float, default=None, help="Seconds between repository polls for new versions (0 = off).")
@click.option("--intra-op-threads", type=click.IntRange(1), default=None, help="onnxruntime intra-op threads per model.")
@click.option("--tls-cert", type=click.Path(dir_okay=False, exists=True), help="PEM certificate: serve over TLS (with --tls-key).")
@click.option("--tls-key", type=click.Path(dir_okay=False, exists=True), help="PEM private key for --tls-cert.")
@click.option("--no-bootstrap", is_flag=True, help="Serve an empty repository as it is instead of training the default zoo.")
def serve(repository, runs_dir, host, port, metrics_port, max_batch_size, max_queue_delay_us, require_gpu, poll_interval,
          intra_op_threads, tls_cert, tls_key, no_bootstrap) -> None:
    """Serve the repository over KServe v2 gRPC (trains and exports the default zoo first when it is empty)."""
    import logging
    import os

    from zoo.core import repository as repo
    from zoo.server.settings import ServerSettings, env_defaults

    flags = dict(repository=repository, host=host, port=port, metrics_port=metrics_port, max_batch_size=max_batch_size,
                 max_queue_delay_us=max_queue_delay_us, require_gpu=require_gpu, poll_interval_s=poll_interval,
                 intra_op_threads=intra_op_threads, tls_cert=tls_cert, tls_key=tls_key)
    try:  # flags win over ZOO_* variables, which win over the defaults
        settings = ServerSettings(**{**env_defaults(os.environ), **{k: v for k, v in flags.items() if v is not None}}).validate()
    except ValueError as e:
        _fail(str(e))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if not no_bootstrap and not repo.model_names(settings.repository):
        click.echo(f"{settings.repository} holds no models: training and exporting the default zoo first")
        bootstrap_default_zoo(str(settings.repository), runs_dir)
    from zoo.server.app import run

    sys.exit(run(settings))


def _register_predict() -> None:
    from zoo.cli.predict import predict

    main.add_command(predict)


_register_predict()

if __name__ == "__main__":
    main()
