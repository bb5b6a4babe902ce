"""`zoo tune`: hyperparameters chosen within a time budget; the best trial is saved as an ordinary run."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from zoo.cli.common import DEFAULT_RUNS, fail

SAVE_RESERVE_S = 3.0  # of the budget, kept for scoring the winner on the test split and writing the run


@click.command()
@click.argument("recipe", required=False)
@click.option("--data", "data_file", type=click.Path(dir_okay=False), help="Your own CSV/NPZ/Parquet file instead of a recipe.")
@click.option("--target", help="Label column of --data (several, comma-separated: multilabel).")
@click.option("--name", help="Model name (default: the recipe, or the data file's stem).")
@click.option("--runs", "runs_dir", default=DEFAULT_RUNS, show_default=True, help="Where runs are written.")
@click.option("--budget", type=click.FloatRange(1), default=120, show_default=True, help="Wall-clock seconds for the whole command.")
@click.option("--trials", type=click.IntRange(1), help="Stop after this many trials (default: when the budget ends).")
@click.option("--storage", help="Optuna storage URL shared by several processes (default: sqlite file RUNS/NAME/tune.sqlite).")
@click.option("--study", help="Study name in the storage (default: NAME).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seeds the search and every trial's training.")
@click.option("--val-split", type=click.FloatRange(0.05, 0.5), default=0.1, show_default=True, help="Share held out for validation.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--threads", type=click.IntRange(0), default=0, show_default=True, help="CPU threads for training (0: auto).")
@click.option("--data-dir", help="Folder of the Fashion-MNIST IDX files (default /usr/share/datasets/fashion-mnist).")
@click.option("--strict-labels", is_flag=True, help="Label warnings (case variants, classes with very few rows) are errors.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def tune(
    recipe, data_file, target, name, runs_dir, budget, trials, storage, study, seed, val_split, device, threads, data_dir, strict_labels,
    quiet,
) -> None:  # fmt: skip
    """Search hyperparameters for a recipe or --data FILE within --budget seconds; the best becomes a run of NAME."""
    started = time.monotonic()
    from zoo.training import distributed

    if distributed.from_env() is not None:
        fail(
            "zoo tune runs its trials in one process and cannot run under torchrun; run it as a plain command "
            "(several machines share one study with --storage URL --study NAME instead)"
        )
    from zoo.cli.train import load_data, save_run_of

    name, data, defaults = load_data(recipe, data_file, target, name, data_dir, strict_labels)
    from zoo.training.loop import TrainConfig
    from zoo.training.tune import TuneConfig, without_password
    from zoo.training.tune import tune as search

    base = TrainConfig(**defaults, seed=seed, val_fraction=val_split, device=device, threads=threads)
    shared = storage is not None  # a storage named on the command line is one several processes may share
    if storage is None:
        Path(runs_dir, name).mkdir(parents=True, exist_ok=True)
        storage = f"sqlite:///{Path(runs_dir, name, 'tune.sqlite').resolve()}"
    tc = TuneConfig(
        deadline=started + budget - SAVE_RESERVE_S, trials=trials, seed=seed, storage=storage, study=study or name, shared=shared
    )
    click.echo(
        f"tuning {name}: {len(data.X_train)} rows x {data.num_features} features, {data.num_classes} classes ({data.task}), "
        f"budget {budget:.0f}s" + (f", at most {trials} trials" if trials else "") + f", study {tc.study!r} in {without_password(storage)}"
    )
    bar = _progress(quiet, trials, tc.deadline)
    try:
        found = search(data, base, tc, on_trial=bar.trial)
    except (RuntimeError, ValueError) as e:
        bar.close()
        fail(str(e))
    bar.close()
    result = found.result
    result.metrics["search"] = found.search
    path = save_run_of(name, data, found.config, runs_dir, result)
    m, s = result.metrics, found.search
    click.echo(
        f"best of {s['trials_this_process']} trials: #{s['best_trial']} validation accuracy {s['best_val_accuracy']:.4f}, "
        f"hidden {','.join(map(str, found.config.hidden))} {found.config.activation}, lr {found.config.lr:.2g}, "
        f"batch {found.config.batch_size}, {m['epochs_run']} epochs"
    )
    click.echo(f"test accuracy {m['test_accuracy']:.4f} in {time.monotonic() - started:.1f}s of a {budget:.0f}s budget -> {path}")


class _progress:
    """A tqdm bar of trials with the best validation score so far and the time left; silent under -q."""

    def __init__(self, quiet: bool, trials: int | None, deadline: float):
        from tqdm import tqdm

        self.deadline = deadline
        self.bar = tqdm(total=trials, unit="trial", disable=True if quiet else None, file=sys.stderr, leave=False)

    def trial(self, record: dict, best: dict | None) -> None:
        """Called after each trial of this process."""
        shown = {"left": f"{max(0.0, self.deadline - time.monotonic()):.0f}s"}
        if best:
            shown["best_val_acc"] = f"{best['value']:.4f}"
        self.bar.set_postfix(shown)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()
