"""The training story on the command line: `zoo train` and `zoo bootstrap` (the default zoo); `zoo export` is zoo.cli.export."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from zoo.cli.common import DEFAULT_REPOSITORY, DEFAULT_RUNS, fail


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


@click.command()
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
@click.option(
    "--val-split",
    type=click.FloatRange(0, 0.5),
    default=0.1,
    show_default=True,
    help="Share of the training split held out for validation.",
)
@click.option("--patience", type=click.IntRange(0), default=0, show_default=True, help="Early stopping patience in epochs (0: off).")
@click.option("--normalize", type=click.Choice(["feature", "global", "none"]), help="Input normalisation fitted on the training split.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--threads", type=click.IntRange(0), default=0, show_default=True, help="CPU threads for training (0: auto, by step size).")
@click.option("--schedule", type=click.Choice(["constant", "onecycle"]), help="Learning-rate schedule (default: the recipe's).")
@click.option("--augment", type=click.Choice(["none", "flip"]), help="Mirror a random half of each batch of square images.")
@click.option("--data-dir", help="Folder of the Fashion-MNIST IDX files (default /usr/share/datasets/fashion-mnist).")
@click.option("--strict-labels", is_flag=True, help="Label warnings (case variants, classes with very few rows) are errors.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def train(
    recipe,
    data_file,
    target,
    name,
    runs_dir,
    hidden,
    activation,
    dropout,
    optimizer,
    epochs,
    batch_size,
    lr,
    weight_decay,
    seed,
    val_split,
    patience,
    normalize,
    device,
    threads,
    schedule,
    augment,
    data_dir,
    strict_labels,
    quiet,
) -> None:
    """Train a bundled recipe (`zoo train iris`) or your own data (`--data FILE --target COLUMN`)."""
    name, data, defaults = load_data(recipe, data_file, target, name, data_dir, strict_labels)
    overrides = dict(
        hidden=_parse_hidden(hidden),
        activation=activation,
        dropout=dropout,
        optimizer=optimizer,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        weight_decay=weight_decay,
        normalize=normalize,
        schedule=schedule,
        augment=augment,
    )
    from zoo.training.loop import TrainConfig

    cfg = TrainConfig(
        **{**defaults, **{k: v for k, v in overrides.items() if v is not None}},
        seed=seed,
        val_fraction=val_split,
        patience=patience,
        device=device,
        threads=threads,
    )
    train_and_save(name, data, cfg, runs_dir, quiet)


def load_data(recipe, data_file, target, name, data_dir, strict_labels):
    """(name, dataset, recipe defaults) of a RECIPE or --data/--target, with the data's warnings printed; exit 1 on errors."""
    from zoo.core.repository import check_name
    from zoo.data import DataError, get_recipe, origin

    if bool(recipe) == bool(data_file):
        fail("give either a RECIPE or --data FILE --target COLUMN (see `zoo list` for recipes)")
    try:
        if recipe:
            defaults = dict(get_recipe(recipe).defaults)
            data = origin.load(origin.of_recipe(recipe, data_dir))
            name = name or recipe
        else:
            if not target:
                fail(f"{data_file}: name the label column with --target COLUMN")
            name = name or Path(data_file).stem
            data = origin.load(origin.of_file(data_file, target), name=name, strict_labels=strict_labels)
            defaults = {}
        check_name(name)
    except (KeyError, DataError, ValueError) as e:
        fail(str(e.args[0]) if isinstance(e, KeyError) else str(e))
    for warning in data.warnings:
        click.secho(f"warning: {warning} (--strict-labels makes this an error)", fg="yellow", err=True)
    return name, data, defaults


def train_and_save(name, data, cfg, runs_dir, quiet) -> Path | None:
    """Fit, plot, save; prints where the run went and its test accuracy (under torchrun: rank 0 only)."""
    from tqdm import tqdm

    from zoo.training import distributed
    from zoo.training.loop import fit, rising_hint

    ctx = distributed.from_env()
    if ctx is not None and not ctx.is_main:
        try:  # the other ranks train in lock-step and write nothing
            fit(data, cfg)
        finally:
            distributed.shutdown()
        return None

    click.echo(
        f"training {name}: {len(data.X_train)} rows x {data.num_features} features, {data.num_classes} classes ({data.task}), "
        f"hidden {','.join(map(str, cfg.hidden))}, {cfg.epochs} epochs"
    )
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
        fail(str(e))
    finally:
        distributed.shutdown()
    bar.close()
    path = save_run_of(name, data, cfg, runs_dir, result)
    m = result.metrics
    ranks = f" on {m['world_size']} ranks" if m.get("world_size", 1) > 1 else ""
    click.echo(
        f"test accuracy {m['test_accuracy']:.4f} after {m['epochs_run']} epochs (best validation loss: epoch {m['best_epoch']}) "
        f"in {m['train_seconds']:.1f}s{ranks} "
        f"({m['parameters']:,} parameters) -> {path}"
    )
    hint = rising_hint(result.history, m["best_epoch"], cfg.patience)
    if hint:
        click.secho(f"hint: {hint}", fg="yellow", err=True)
    return path


def save_run_of(name, data, cfg, runs_dir, result) -> Path:
    """The run folder, with its training curve and (single-label tasks) test confusion matrix as PNGs."""
    import torch

    from zoo import plots
    from zoo.training.checkpoint import save_run

    with torch.no_grad():
        probs = result.model.probabilities(torch.as_tensor(data.X_test)).numpy()
    # Named as `zoo export` looks for them: it carries them into the version folder, for the server's model pages.
    extra = plots.run_figures(name, result.history, data.task, data.y_test, probs, data.class_names)
    return save_run(runs_dir, name, result.model, data, cfg.to_dict(), result.metrics, result.history, extra)


@click.command()
@click.option("--repository", default=DEFAULT_REPOSITORY, show_default=True, help="Model repository to fill.")
@click.option("--runs", "runs_dir", default=DEFAULT_RUNS, show_default=True, help="Where the training runs go.")
def bootstrap(repository, runs_dir) -> None:
    """Train and export the default zoo's recipes (iris, wine, breast-cancer, digits) that the repository lacks."""
    from zoo.core import repository as repo
    from zoo.data import origin
    from zoo.data.recipes import DEFAULT_ZOO, get_recipe
    from zoo.training.checkpoint import load_run
    from zoo.training.export import export_run
    from zoo.training.loop import TrainConfig

    missing = [name for name in DEFAULT_ZOO if not repo.versions(repository, name)]
    if not missing:
        click.echo(f"{repository} already holds the default zoo ({', '.join(DEFAULT_ZOO)})")
        return
    for name in missing:
        path = train_and_save(name, origin.load(origin.of_recipe(name)), TrainConfig(**get_recipe(name).defaults), runs_dir, quiet=True)
        assert path is not None  # bootstrap runs in one process, never as a torchrun rank
        result = export_run(load_run(path), repository, name=name)
        click.echo(f"exported {name} v{result.version} -> {result.path}")
