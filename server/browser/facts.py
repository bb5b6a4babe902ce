"""A serving version's facts as HTML: its card, training metrics in words a reader knows, the export's parity
check, when it was trained and exported, its serving statistics and its training figures."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from zoo.server.browser import search
from zoo.server.browser.catalog import VersionInfo
from zoo.server.browser.html import Html, h, join, table
from zoo.server.browser.paths import version_path

LONG_LIST = 24  # name lists longer than this are collapsed
# The metadata's keys in words a reader knows; keys not listed show as they are.
METRIC_WORDS = {
    "test_accuracy": "Accuracy on the test split (rows held out from training)",
    "test_loss": "Loss on the test split",
    "train_accuracy": "Accuracy on the training split",
    "val_accuracy": "Accuracy on the validation split",
    "epochs_run": "Epochs trained",
    "best_epoch": "Epoch kept (lowest validation loss)",
    "train_seconds": "Training time (seconds)",
    "parameters": "Weights in the network",
    "device": "Trained on",
    "threads": "CPU threads used",
    "world_size": "Processes (distributed training)",
}
PARITY_WORDS = {
    "rows": "Test rows compared",
    "max_abs_diff_probabilities": "Largest probability difference, PyTorch vs ONNX",
    "tolerance": "Largest difference allowed",
    "one_hot_agreement": "Share of rows with the same decision",
    "label_agreement": "Share of rows with the same label",
    "one_hot_matches_threshold": "Decisions follow the threshold",
    "batch_invariance_max_abs_diff": "Largest difference, one row alone vs in a batch",
    "batch_invariant_one_hot": "Same decision alone and in a batch",
}
FIGURE_TEXT = {  # figure -> (caption, what the image shows, for people who cannot see it)
    "training_curve": ("Training curve", "loss and accuracy per epoch on the training and validation splits"),
    "reliability_diagram": (
        "Reliability diagram",
        "how often a predicted probability came true on the test split, before and after calibration (the diagonal is perfect)",
    ),
    "precision_recall": (
        "Precision-recall curve",
        "precision against recall on the validation split as the threshold moves (per class for several; accuracy against "
        "coverage for a model that can abstain), with the chosen operating point marked",
    ),
    "confusion_matrix": ("Confusion matrix", "counts of each true class (rows) against the predicted class (columns) on the test split"),
}


def version_body(info: VersionInfo) -> Html:
    """A serving version's facts: a definition list, then its training metrics, parity report and serving statistics."""
    card = info.card
    assert card is not None  # only versions that serve have a body
    meta = card.extra
    facts = [
        ("Task", card.task),
        ("Execution provider", info.provider),
        ("Default threshold", _thresholds(card.default_threshold, card.class_names)),
        ("Classes", _names(card.class_names, "classes")),
        ("Features", _names(card.feature_names, "features")),
        ("Dataset", value(meta.get("dataset", "—"))),
        ("Dataset fingerprint", h("code", value(meta.get("dataset_fingerprint", "—")))),
        ("Trained", _when(meta.get("trained_at") or _run_started(meta.get("run")))),
        ("Exported", _when(meta.get("exported_at"))),
        (
            "Exported with",
            value(
                " · ".join(
                    f"{k.replace('_version', '')} {meta[k]}"
                    for k in ("torch_version", "onnx_version", "onnxruntime_version", "opset")
                    if k in meta
                )
                or "—"
            ),
        ),
    ]
    dl = h("dl", [(h("dt", k), h("dd", v)) for k, v in facts], class_="facts")
    # A tuned run's search has its own section (browser/search.py), not one cell of JSON here.
    metrics = {k: v for k, v in meta["metrics"].items() if k != search.METRICS_KEY} if isinstance(meta.get("metrics"), dict) else {}
    parity: dict = meta["parity"] if isinstance(meta.get("parity"), dict) else {}
    passed = parity.get("passed")
    verdict = "passed" if passed is True else "FAILED" if passed is False else "not recorded"
    label = f"{info.name} v{info.version}"
    return join(
        [
            dl,
            _pairs(f"How {label} trained", "Measure", metrics, METRIC_WORDS) if metrics else h("p", "No training metrics recorded."),
            _pairs(
                f"Does the exported model answer like the trained one? ({label}: {verdict})",
                "Check",
                {k: v for k, v in parity.items() if k != "passed"},
                PARITY_WORDS,
            )
            if parity
            else h("p", "No parity report recorded."),
            _serving(label, info),
        ]
    )


def _serving(label: str, info: VersionInfo) -> Html:
    s = info.serving
    if s is None:
        return Html("")
    last = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(s.last_inference_ms / 1000)) if s.last_inference_ms else "never"
    return _pairs(
        f"Serving statistics of {label} since it loaded",
        "Statistic",
        {
            "requests": s.requests,
            "failed requests": s.failures,
            "rows answered": s.rows,
            "batches (model calls)": s.batches,
            "mean batch size (rows)": s.mean_batch_rows,
            "mean latency (ms)": s.mean_latency_ms,
            "mean queue time (ms)": s.mean_queue_ms,
            "mean model time per request (ms)": s.mean_compute_ms,
            "last inference": last,
        },
    )


def figures(info: VersionInfo) -> Html:
    items = []
    for figure in info.figures:
        caption, what = FIGURE_TEXT.get(figure, (figure.replace("_", " ").capitalize(), "a figure zoo export carried with this version"))
        src = f"{version_path(info.name, info.version)}/{figure}.png"
        items.append(
            h(
                "figure",
                h("img", src=src, alt=f"{caption} of {info.name} version {info.version}: {what}"),
                h("figcaption", f"{caption}: {what}."),
            )
        )
    if not items:
        items = [
            h(
                "p",
                "This version was exported without figures: zoo train draws them into the run, and zoo export "
                "carries them into the version folder.",
            )
        ]
    elif "confusion_matrix" not in info.figures:
        items.append(h("p", "No confusion matrix: the run drew none (multilabel models have none)."))
    return h("section", h("h2", "Training", id="training"), items, aria_labelledby="training")


def _pairs(caption: str, what: str, values: dict[str, Any], words: dict[str, str] | None = None) -> Html:
    """A two-column table; `words` names known keys the way a person would (others show as they are)."""
    words = words or {}
    rows = [h("tr", h("th", words.get(str(k), str(k).replace("_", " ")), scope="row"), h("td", value(v))) for k, v in values.items()]
    return table(caption, (what, "Value"), rows)


def percent(v: Any) -> str:
    return f"{100 * v:.1f} %" if isinstance(v, int | float) and not isinstance(v, bool) else "—"


def _when(iso: Any) -> str:
    """An ISO 8601 UTC time as a person reads it; 'not recorded' for versions exported before zoo kept it."""
    if not isinstance(iso, str):
        return "not recorded"
    try:
        return time.strftime("%Y-%m-%d %H:%M UTC", time.strptime(iso, "%Y-%m-%dT%H:%M:%SZ"))
    except ValueError:
        return iso


def _run_started(run: Any) -> str | None:
    """When a run started, from its id (the last part of its path: a UTC time stamp), for older exports."""
    stamp = str(run).rstrip("/").rsplit("/", 1)[-1][:15] if isinstance(run, str) else ""
    try:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.strptime(stamp, "%Y%m%dT%H%M%S"))
    except ValueError:
        return None


def _names(names: Sequence[str], what: str) -> Html:
    listed = h("ol", [h("li", n) for n in names], class_="names")
    if len(names) <= LONG_LIST:
        return join([f"{len(names)}: ", listed])
    return h("details", h("summary", f"{len(names)} {what}"), listed)


def _thresholds(t: float | list[float], classes: list[str]) -> str:
    """The default threshold, or the per-class ones by class name."""
    return "; ".join(f"{c} {v:.4g}" for c, v in zip(classes, t, strict=True)) if isinstance(t, list) else value(t)


def value(v: Any) -> str:
    """A metadata value as text: numbers rounded for reading, anything else of a user's JSON shown as JSON."""
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, str):
        return v
    return json.dumps(v, ensure_ascii=False)
