"""Hyperparameter search within a time budget: Optuna's seeded TPE sampler, a median pruner fed by validation curves.

Trials run in this process on the data loaded once; each is scored on the validation split only (the search sees
no test rows). The best trial this process ran is the result, test-scored once at the end. Optuna's RDB storage
(SQLite by default, PostgreSQL/MySQL for several machines) lets several processes share one study.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from zoo.data.dataset import Dataset
from zoo.training.loop import TrainConfig, TrainResult, fit, score_test

ACTIVATIONS = ("relu", "tanh")
BATCH_SIZES = (16, 32, 64, 128, 256)
PATIENCE = (0, 5, 10)  # 0: the trial runs its epochs; else early stopping keeps the best epoch


@dataclass
class TuneConfig:
    """How to search: the budget, where the study lives, the seed."""

    deadline: float  # time.monotonic() by which the search must have stopped (the budget less saving time)
    trials: int | None = None  # stop after this many trials of this process (None: only the budget stops it)
    seed: int = 0  # seeds the sampler and every trial's training
    storage: str = "sqlite:///tune.sqlite"  # an Optuna RDB URL
    study: str = "zoo"
    shared: bool = False  # several processes may share the study: each draws its own stream (seed + process id)
    max_epochs: int = 300


@dataclass
class TuneResult:
    """The best trial this process ran, with the search recorded for the run."""

    result: TrainResult
    config: TrainConfig
    search: dict = field(default_factory=dict)


def space(trial, base: TrainConfig, max_epochs: int) -> TrainConfig:
    """The trial's settings: widths and depth, activation, lr, batch size, epochs or early stopping, dropout, L2."""
    depth = trial.suggest_int("depth", 1, 3)
    hidden = tuple(trial.suggest_int(f"width_{i}", 16, 512, log=True) for i in range(depth))
    lo, hi = max(2, base.epochs // 4), max(4, min(max_epochs, base.epochs * 10))
    decay = trial.suggest_float("weight_decay", 1e-6, 1e-2, log=True) if trial.suggest_categorical("l2", [False, True]) else 0.0
    return dataclasses.replace(
        base,
        hidden=hidden,
        activation=trial.suggest_categorical("activation", list(ACTIVATIONS)),
        lr=trial.suggest_float("lr", 1e-4, 3e-2, log=True),
        batch_size=trial.suggest_categorical("batch_size", list(BATCH_SIZES)),
        epochs=trial.suggest_int("epochs", lo, hi, log=True),
        patience=trial.suggest_categorical("patience", list(PATIENCE)),
        dropout=trial.suggest_float("dropout", 0.0, 0.5),
        weight_decay=decay,
    )


def params_of(cfg: TrainConfig) -> dict:
    """The search-space parameters that reproduce `cfg` (to enqueue the starting settings as the first trial)."""
    p: dict[str, object] = {"depth": len(cfg.hidden), **{f"width_{i}": w for i, w in enumerate(cfg.hidden)}}
    p |= {"activation": cfg.activation, "lr": cfg.lr, "batch_size": cfg.batch_size, "epochs": cfg.epochs}
    p |= {"patience": cfg.patience, "dropout": cfg.dropout, "l2": cfg.weight_decay > 0}
    return p | ({"weight_decay": cfg.weight_decay} if cfg.weight_decay > 0 else {})


def _storage(url: str, engine_kwargs: dict, attempts: int = 5):
    """Optuna's RDB storage; two processes creating a new database at once race on its schema (one of them gets an
    IntegrityError from Alembic's version table), and the loser finds the schema made when it tries again."""
    import optuna
    from sqlalchemy.exc import IntegrityError, OperationalError

    for attempt in range(attempts):
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs)
        except (IntegrityError, OperationalError):
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def without_password(url: str) -> str:
    """The storage URL with any password masked (SQLAlchemy's own rendering), for records and messages."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def open_study(tc: TuneConfig):
    """(study, created): the named study in the storage, created (with a seeded sampler) if it is not there."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    kwargs = {"connect_args": {"timeout": 60}} if tc.storage.startswith("sqlite") else {}
    storage = _storage(tc.storage, kwargs)
    known = {s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)}
    # Processes sharing a study draw their own streams: the same seed in two of them would propose the same trials.
    joined = tc.study in known
    offset = len(optuna.load_study(study_name=tc.study, storage=storage).trials) if joined else 0
    offset += os.getpid() if tc.shared else 0
    sampler = optuna.samplers.TPESampler(seed=(tc.seed + offset) % 2**32, n_startup_trials=8)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=3)
    study = optuna.create_study(
        study_name=tc.study, storage=storage, sampler=sampler, pruner=pruner, direction="maximize", load_if_exists=True
    )
    return study, not joined


def tune(data: Dataset, base: TrainConfig, tc: TuneConfig, *, on_trial: Callable[[dict, dict | None], None] | None = None) -> TuneResult:
    """Search until the deadline (or `trials`); the best trial this process ran, its model scored on the test split."""
    import optuna

    study, created = open_study(tc)
    if created:  # the starting settings first: the search is never worse than them by more than noise
        study.enqueue_trial(params_of(base), skip_if_exists=True)
    search_data = dataclasses.replace(data, X_test=data.X_test[:0], y_test=data.y_test[:0])  # no test rows in the search
    best: dict = {}
    mine: list[int] = []

    def objective(trial) -> float:
        cfg = space(trial, dataclasses.replace(base, seed=tc.seed), tc.max_epochs)
        mine.append(trial.number)
        t0 = time.monotonic()
        trial.set_user_attr("config", cfg.to_dict())

        def report(row: dict) -> None:
            score = row.get("val_accuracy", float("nan"))
            trial.report(score, row["epoch"])
            if trial.should_prune():
                trial.set_user_attr("seconds", time.monotonic() - t0)
                trial.set_user_attr("epochs_run", row["epoch"])
                raise optuna.TrialPruned()

        result = fit(search_data, cfg, on_epoch=report, deadline=tc.deadline)
        score = result.metrics["val_accuracy"]
        score = 0.0 if score is None or math.isnan(score) else score
        trial.set_user_attr("seconds", time.monotonic() - t0)
        trial.set_user_attr("epochs_run", result.metrics["epochs_run"])
        trial.set_user_attr("cut", bool(result.metrics.get("cut")))
        if not best or score > best["score"]:
            best.update(score=score, result=result, config=cfg, number=trial.number)
        return score

    def after(study, frozen) -> None:
        if on_trial:
            on_trial(trial_record(frozen), {"number": best["number"], "value": best["score"]} if best else None)

    started = time.monotonic()
    study.optimize(
        objective,
        n_trials=tc.trials,
        timeout=max(0.0, tc.deadline - started),
        callbacks=[after],
        catch=(),
    )
    if not best:
        raise RuntimeError("the budget ended before a trial finished; give zoo tune a larger --budget")
    result: TrainResult = best["result"]
    result.metrics.update(score_test(result.model, data))
    trials = [trial_record(t) | {"process": "this" if t.number in mine else "other"} for t in study.trials]
    search = {
        "library": f"optuna {optuna.__version__}",
        "sampler": "TPE",
        "pruner": "median",
        "seed": tc.seed,
        "study": tc.study,
        "storage": without_password(tc.storage),  # the run and metadata.json travel; a database password must not
        "metric": "val_accuracy",
        "seconds": time.monotonic() - started,
        "best_trial": best["number"],
        "best_val_accuracy": best["score"],
        "study_best_trial": _study_best(study),
        "trials_this_process": len(mine),
        "trials": trials,
    }
    return TuneResult(result, best["config"], search)


def trial_record(t) -> dict:
    """A trial as the run records it: number, state, settings, validation score, epochs and seconds."""
    return {
        "number": t.number,
        "state": t.state.name.lower(),
        "val_accuracy": t.value if t.value is not None else (max(t.intermediate_values.values()) if t.intermediate_values else None),
        "config": t.user_attrs.get("config"),
        "epochs_run": t.user_attrs.get("epochs_run"),
        "seconds": t.user_attrs.get("seconds"),
        "cut": t.user_attrs.get("cut", False),
    }


def _study_best(study) -> int | None:
    """The best trial of the whole study (other processes' included), or None."""
    try:
        return study.best_trial.number
    except ValueError:
        return None
