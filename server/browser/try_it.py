"""The try-it form of a version's page: a row in (pasted, or one field per feature), a threshold, and where the
script (assets.JS) draws the answer and the equivalent curl command."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from zoo.core import contract
from zoo.server.browser import operating
from zoo.server.browser.catalog import VersionInfo
from zoo.server.browser.html import Html, h, table

STATS_PREFIX = "On the validation split at this threshold (coverage: the share of rows at or above it): "
OPEN_FIELDS = 16  # up to this many features, the per-feature fields show open; more (mnist: 784), behind <details>


def infer_path(name: str, version: str) -> str:
    """The v2 REST inference endpoint of one version."""
    return f"/v2/models/{quote(name, safe='')}/versions/{quote(version, safe='')}/infer"


def form(info: VersionInfo, token_required: bool) -> Html:
    """The section of a serving version: the form the script sends, the answer it fills in, and what to do without
    JavaScript."""
    card = info.card
    assert card is not None  # pages offer the form only where a version serves
    n = card.num_features
    means = _means(card.extra.get("normalization"), n)
    fields = [
        h(
            "div",
            h("label", fname, for_=f"feature-{i}"),
            h(
                "input",
                id=f"feature-{i}",
                type="number",
                step="any",
                inputmode="decimal",
                autocomplete="off",
                placeholder=f"{means[i]:.4g}" if means else None,
                data_feature=str(i),
            ),
            class_="field",
        )
        for i, fname in enumerate(card.feature_names)
    ]
    fill = h("button", "Fill empty fields with the training means", type="button", id="fill-means") if means else None
    hint = "the training mean is each field's placeholder" if means else "the model records no training means"
    t = card.default_threshold
    per_class = isinstance(t, list)
    start = max(t) if isinstance(t, list) else t  # per-class defaults: one slider sets one threshold for every class
    validation = operating.curves(card)
    inputs = h(
        "form",
        h(
            "div",
            h("label", f"Paste a CSV row: {n} number{'s' * (n != 1)}, in feature order", for_="row"),
            h(
                "textarea",
                id="row",
                rows="3" if n > OPEN_FIELDS else "1",
                spellcheck="false",
                autocomplete="off",
                aria_describedby="row-help",
            ),
            h("p", "A pasted row is sent as it is; leave it empty to send the fields below.", id="row-help", class_="hint"),
            class_="field",
        ),
        h(
            "details",
            h("summary", f"Or fill one field per feature ({n}; {hint})"),
            fill,
            h("div", fields, class_="features"),
            open=n <= OPEN_FIELDS,
            id="fields",
        ),
        h(
            "div",
            h("label", "Threshold", for_="threshold"),
            " ",
            h("input", type="range", id="threshold", min="0", max="1", step="0.01", value=f"{start:g}", aria_describedby="threshold-help"),
            " ",
            h("output", "per class" if per_class else f"{start:.2f}", id="threshold-value", for_="threshold"),
            h("p", _threshold_help(card.task, card.class_names, t), id="threshold-help", class_="hint"),
            h("p", _stats(validation, t), id="threshold-stats", class_="hint", aria_live="polite") if validation else None,
            class_="field",
        ),
        h("button", "Predict", type="submit"),
        h("p", id="try-error", role="alert", class_="error", hidden=True),
        id="try",
        data_infer=infer_path(info.name, info.version),
        data_features=str(n),
        data_classes=json.dumps(card.class_names),
        # The request and answer names come from the contract, so the script restates none of them.
        data_input=card.input.name,
        data_datatype=card.input.datatype,
        data_threshold_param=contract.THRESHOLD_PARAM,
        data_stats_prefix=STATS_PREFIX,
        data_per_class="true" if per_class else None,  # the defaults apply (no threshold sent) until the slider moves
        data_default_threshold=json.dumps(t),
        # The validation curve the threshold was chosen from: the slider shows precision, recall and coverage along it.
        data_curves=json.dumps(validation, separators=(",", ":")) if validation else None,
        data_outputs=json.dumps({"probabilities": contract.PROBABILITIES, "one_hot": contract.ONE_HOT, "label": contract.LABEL}),
        data_token="required" if token_required else None,
    )
    answer = h(
        "div",
        h("h3", "Answer"),
        h("p", "Label: ", h("strong", id="label")),
        table("Probabilities and the one-hot decision", ("Class", "Probability", "One-hot"), [], body_id="probabilities"),
        h("h3", "The same request with curl"),
        h("pre", h("code", id="curl")),
        id="result",
        hidden=True,
        aria_live="polite",
    )
    noscript = h(
        "noscript",
        h(
            "p",
            "This form needs JavaScript. Without it, POST a KServe v2 JSON request to ",
            h("code", infer_path(info.name, info.version)),
            ", for instance with curl.",
        ),
    )
    return h(
        "section",
        h("h2", "Try it", id="try-it"),
        h("p", "Send one row to ", h("code", "POST " + infer_path(info.name, info.version)), " and see the answer."),
        noscript,
        inputs,
        answer,
        aria_labelledby="try-it",
    )


def _threshold_help(task: str, classes: Sequence[str], t: float | list[float]) -> str:
    rule = {
        "multiclass": "the most probable class is chosen when its probability is at least the threshold; below it, none is",
        "binary": f"the positive class ({classes[-1]}) is chosen when its probability is at least the threshold",
        "multilabel": "every class whose probability is at least the threshold is set",
    }.get(task, "")
    if isinstance(t, list):
        defaults = ", ".join(f"{c} {v:g}" for c, v in zip(classes, t, strict=True))
        return (
            f"{rule[:1].upper()}{rule[1:]}. This version's defaults are per class ({defaults}) and apply until you move "
            "the slider, which then sets one threshold for every class."
        )
    return f"{rule[:1].upper()}{rule[1:]}. This version's default is {t:g}."


def _stats(validation: dict[str, dict[str, list[float]]], t: float | list[float]) -> str:
    """The validation scores at the default threshold(s), as the script writes them for the slider's value."""
    each = t if isinstance(t, list) else [t] * len(validation)
    described = [operating.describe(name, operating.at(c, v)) for (name, c), v in zip(validation.items(), each, strict=True)]
    return STATS_PREFIX + "; ".join(described) + "."


def _means(normalization: Any, n: int) -> list[float] | None:
    """The training mean of each feature, when the card records one number per feature."""
    mean = normalization.get("mean") if isinstance(normalization, dict) else None
    if not isinstance(mean, list) or len(mean) != n or not all(isinstance(m, int | float) and math.isfinite(m) for m in mean):
        return None
    return [float(m) for m in mean]
