"""Temperature scaling: one scalar dividing the logits, fitted on the validation split by negative log-likelihood.

Dividing every logit by the same T > 0 keeps their order, so the argmax never changes, and a sigmoid's 0.5 stays
at logit 0. Guo et al., "On Calibration of Modern Neural Networks" (2017).
"""

from __future__ import annotations

import numpy as np
import torch

from zoo.core.contract import Task
from zoo.metrics import ece

METHODS = ("temperature", "none")
PRIOR_SD = 0.25  # prior spread of log T around 0 (T = 1): about a factor of 1.3 either way before the data speak


def _loss(task: str):
    return torch.nn.CrossEntropyLoss() if task == Task.MULTICLASS else torch.nn.BCEWithLogitsLoss()


def _targets(y: np.ndarray, task: str) -> torch.Tensor:
    if task == Task.MULTICLASS:
        return torch.as_tensor(np.asarray(y), dtype=torch.long)
    t = torch.as_tensor(np.asarray(y), dtype=torch.float32)
    return t.unsqueeze(1) if task == Task.BINARY else t


def nll(logits: np.ndarray, y: np.ndarray, task: str, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of the targets under logits / T (per label for sigmoid heads)."""
    with torch.no_grad():
        return float(_loss(task)(torch.as_tensor(logits, dtype=torch.float32) / temperature, _targets(y, task)))


def fit_temperature(logits: np.ndarray, y: np.ndarray, task: str) -> float:
    """The T > 0 minimising the NLL of logits / T on (logits, y), shrunk towards 1: LBFGS on log T from T = 1."""
    z, t = torch.as_tensor(logits, dtype=torch.float64), _targets(y, task)
    t = t.double() if t.is_floating_point() else t
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.5, max_iter=200, line_search_fn="strong_wolfe")
    loss_fn = _loss(task)

    # A Gaussian prior on log T (sd PRIOR_SD) weighted as one more row in len(y): a small or perfectly separated
    # validation split would otherwise drive T towards 0 (every probability 0 or 1) on a handful of rows.
    prior = 1.0 / (2 * PRIOR_SD**2 * max(1, len(y)))

    def closure():
        opt.zero_grad()
        loss = loss_fn(z / log_t.exp(), t) + prior * log_t**2
        loss.backward()
        return loss

    opt.step(closure)
    temperature = float(log_t.detach().exp())
    if not np.isfinite(temperature) or nll(logits, y, task, temperature) > nll(logits, y, task):
        return 1.0  # never worse than leaving the model alone on the data it was fitted on
    return temperature


def logits_to_probabilities(logits: np.ndarray, task: str, temperature: float = 1.0) -> np.ndarray:
    """[N, C] probabilities of logits / T, as the exported graph computes them."""
    from zoo.training.model import logits_to_probabilities as to_p

    with torch.no_grad():
        return to_p(torch.as_tensor(logits, dtype=torch.float32) / temperature, task).numpy()


def record(temperature: float, method: str, test_logits: np.ndarray, y_test: np.ndarray, task: str) -> dict:
    """metadata.json's `calibration`: the method, T, and the test split's ECE and NLL before and after."""
    before, after = logits_to_probabilities(test_logits, task), logits_to_probabilities(test_logits, task, temperature)
    return {
        "method": method,
        "temperature": temperature,
        "test_ece_before": ece(before, y_test, task),
        "test_ece_after": ece(after, y_test, task),
        "test_nll_before": nll(test_logits, y_test, task),
        "test_nll_after": nll(test_logits, y_test, task, temperature),
        "test_rows": int(len(y_test)),
    }


def run_logits(run, X: np.ndarray) -> np.ndarray:
    """The run's model's raw logits for raw features X."""
    with torch.no_grad():
        return run.model(torch.as_tensor(np.asarray(X, dtype=np.float32))).numpy()


def calibrate_run(run, method: str) -> tuple[float, dict]:
    """(T, metadata.json's `calibration`) for a run: T fitted on its validation rows, scored on its test rows.

    A run without validation rows (saved before zoo kept them, or trained with --val-split 0) cannot be
    calibrated: the record says so under `reason`, T stays 1 and the caller warns.
    """
    if method not in METHODS:
        raise ValueError(f"unknown calibration {method!r}; expected one of {', '.join(METHODS)}")
    X_test, y_test = run.holdout()
    test_logits = run_logits(run, X_test)
    if method == "none":
        return 1.0, record(1.0, "none", test_logits, y_test, run.info["task"])
    val = run.validation()
    if val is None or len(val[0]) == 0:
        rec = record(1.0, "none", test_logits, y_test, run.info["task"])
        why = "the run has no validation rows (trained with --val-split 0, or by a zoo that did not keep them)"
        return 1.0, {**rec, "reason": f"not calibrated: {why}; retrain to calibrate"}
    task = run.info["task"]
    temperature = fit_temperature(run_logits(run, val[0]), val[1], task)
    return temperature, {**record(temperature, method, test_logits, y_test, task), "validation_rows": int(len(val[0]))}
