"""What an export bakes into the graph besides the network: the temperature and the default threshold, with
the facts and figures that justify them (calibration record, operating point, reliability and PR plots)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from zoo.core import decision, repository
from zoo.core.atomic import write_bytes
from zoo.core.contract import Task
from zoo.training import operating_point
from zoo.training.calibration import calibrate_run, logits_to_probabilities, run_logits


@dataclass
class Decisions:
    """The temperature and threshold an export uses, and what metadata.json and the version folder record."""

    temperature: float
    threshold: float | list[float]
    calibration: dict
    operating_point: dict | None = None
    figures: dict[str, bytes] = field(default_factory=dict)  # repository.FIGURES key -> PNG bytes

    def write_figures(self, stage: Path) -> dict[str, str]:
        """Write the figures into the staging folder; figure -> SHA-256 of the bytes written."""
        out = {}
        for figure, data in self.figures.items():
            write_bytes(stage / repository.FIGURES[figure], data)
            out[figure] = repository.sha256_bytes(data)
        return out


def parse_threshold(text: str | None) -> float | list[float] | str | None:
    """`--threshold`: a number, comma-separated numbers (one per class), or 'auto'; ValueError otherwise."""
    if text is None or text.strip().lower() == "auto":
        return None if text is None else "auto"
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise ValueError(f"--threshold takes a number in [0, 1], one per class separated by commas, or auto; got {text!r}") from None
    if not all(0.0 <= v <= 1.0 for v in values):
        raise ValueError(f"--threshold values must be in [0, 1]; got {text!r}")
    return values[0] if len(values) == 1 else values


def decide(run, calibration: str, threshold, target_precision: float | None = None, target_recall: float | None = None) -> Decisions:
    """Calibrate the run, then fix its threshold (given, the task's default, or chosen on validation rows)."""
    from zoo.decision_plots import pr_curve_png, reliability_png

    task, names = run.info["task"], run.info["class_names"]
    if target_precision is not None and target_recall is not None:
        raise ValueError("give --target-precision or --target-recall, not both")
    targeted = target_precision is not None or target_recall is not None
    if targeted and threshold not in (None, "auto"):
        raise ValueError("--target-precision and --target-recall choose the threshold: use them with --threshold auto, not a number")
    temperature, record = calibrate_run(run, calibration)
    X_test, y_test = run.holdout()
    test_logits = run_logits(run, X_test)
    p_test = logits_to_probabilities(test_logits, task, temperature)
    curves = {"uncalibrated": (logits_to_probabilities(test_logits, task), y_test)}
    if temperature != 1.0:
        curves[f"calibrated (T = {temperature:.3g})"] = (p_test, y_test)
    figures = {"reliability_diagram": reliability_png(curves, task, f"{run.info['name']}: test split")}
    val = run.validation()
    p_val = logits_to_probabilities(run_logits(run, val[0]), task, temperature) if val is not None and len(val[0]) else None
    chosen_by, curve = "given" if threshold is not None else "task default", None
    if threshold == "auto" or targeted:
        if p_val is None:
            raise operating_point.OperatingPointError(
                "--threshold auto chooses on the validation split, and this run has none; retrain with --val-split 0.1 or more"
            )
        assert val is not None
        threshold, chosen_by, curve = operating_point.choose(p_val, val[1], task, names, target_precision, target_recall)
    elif threshold is None:
        threshold = decision.default_threshold(task)
    decision.as_threshold(threshold, task, len(names))  # ValueError: a list for a model that takes one number
    op: dict = {"chosen_by": chosen_by, "threshold": threshold}
    if p_val is not None:
        assert val is not None
        op["validation"] = operating_point.scores(p_val, val[1], task, threshold, names)
    op["test"] = operating_point.scores(p_test, y_test, task, threshold, names)
    if curve is not None:
        op["validation_curve"] = curve
        title = f"{run.info['name']}: validation"
        figures["precision_recall"] = pr_curve_png(_curves_by_class(curve, task, names), title, _marks(op, task, names))
    return Decisions(temperature, threshold, record, op, figures)


def _curves_by_class(curve: dict, task: str, names: list[str]) -> dict[str, dict]:
    if task == Task.MULTILABEL:
        return curve
    return {names[1] if task == Task.BINARY else "top class": curve}


def _marks(op: dict, task: str, names: list[str]) -> dict[str, tuple[float, float]]:
    """Where the chosen threshold sits on each plotted curve (x, y as the curve plots them)."""
    v = op.get("validation") or {}
    if task == Task.MULTILABEL:
        return {n: (s["recall"], s["precision"]) for n, s in v.get("per_class", {}).items()}
    if task == Task.MULTICLASS:
        return {"top class": (v.get("coverage", 1.0), v.get("precision", float("nan")))}
    return {names[1]: (v.get("recall", float("nan")), v.get("precision", float("nan")))}
