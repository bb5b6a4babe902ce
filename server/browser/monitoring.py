"""The monitoring section of a version's page: drift of its inputs against training, its label mix, out-of-range
values. The page draws it once; the script then refreshes it from `monitor.json` (same data, no reload)."""

from __future__ import annotations

from typing import Any

import numpy as np

from zoo.core.reference import psi
from zoo.server.browser.html import Html, h, table
from zoo.server.drift import TOP_BINS, DriftCounts
from zoo.server.monitor import Watched

SHOWN_FEATURES = 10  # the features that moved most
REFRESH_MS = 2000


def figures(merged: tuple[Watched, DriftCounts] | None) -> dict[str, Any]:
    """What the section shows, as JSON-ready data (also the body of monitor.json); `merged` is Monitor.merged()'s."""
    if merged is None:
        return {"rows": 0, "window_rows": 0, "note": "no request answered since this version loaded", "features": [], "labels": []}
    watched, counts = merged
    card, ref = watched.card, watched.reference
    out: dict[str, Any] = {"rows": counts.rows, "window_rows": counts.window_rows, "window_size": watched.window.size, "note": ""}
    mix = ref.class_mix if ref is not None else None
    shares = counts.window_labels / max(1, counts.window_rows)
    out["labels"] = [
        {"label": name, "served": float(shares[i + 1]), "training": None if mix is None else float(mix[i])}
        for i, name in enumerate(card.class_names)
    ]
    out["labels"].append({"label": "no class", "served": float(shares[0]), "training": None})
    out["top_probability"] = {"bins": TOP_BINS, "window": counts.window_top.tolist()}
    if ref is None or counts.bin_counts is None or counts.out_of_range is None:
        out["note"] = f"No drift figures: {watched.why_no_reference}."
        out["features"] = []
        return out
    index = psi(counts.bin_counts, counts.window_rows, ref)
    order = np.argsort(-index, kind="stable")[:SHOWN_FEATURES]
    out["features"] = [
        {
            "feature": card.feature_names[f],
            "psi": float(index[f]),
            "verdict": verdict(float(index[f])),
            "out_of_range": int(counts.out_of_range[f]),
        }
        for f in order
    ]
    out["features_total"] = card.num_features
    return out


def verdict(value: float) -> str:
    """The usual reading of a PSI."""
    return "shifted" if value > 0.25 else "moving" if value > 0.1 else "stable"


def section(data: dict[str, Any], url: str) -> Html:
    """The section as the page first shows it; the script redraws its tables from `url` every few seconds."""
    summary = h("p", summary_text(data), id="monitor-summary")
    features = table(
        "Inputs against training: the features that moved most (population stability index over the window)",
        ("Feature", "Reading", "PSI", "Values outside the training range (since loaded)"),
        [feature_row(f) for f in data["features"]],
        body_id="drift-rows",
        numeric=2,
    )
    labels = table(
        "Decisions: the share of each label in the window, against the training split's class mix",
        ("Label", "Served", "Training"),
        [label_row(x) for x in data["labels"]],
        body_id="label-rows",
        numeric=2,
    )
    note = h("p", data["note"], id="monitor-note", class_="hint")
    return h(
        "section",
        h("h2", "Monitoring", id="monitoring"),
        summary,
        note,
        features,
        labels,
        id="monitor",
        data_monitor=url,
        data_refresh_ms=str(REFRESH_MS),
        aria_labelledby="monitoring",
        aria_live="polite",
    )


def summary_text(data: dict[str, Any]) -> str:
    if not data["rows"]:
        return "No request answered since this version loaded."
    return f"{data['rows']:,} rows answered since this version loaded; the figures cover the last {data['window_rows']:,}."


def feature_row(f: dict[str, Any]) -> Html:
    return h(
        "tr",
        h("th", f["feature"], scope="row"),
        h("td", f["verdict"]),
        h("td", f"{f['psi']:.3f}", class_="num"),
        h("td", f"{f['out_of_range']:,}", class_="num"),
    )


def label_row(x: dict[str, Any]) -> Html:
    training = "—" if x["training"] is None else f"{100 * x['training']:.1f} %"
    return h("tr", h("th", x["label"], scope="row"), h("td", f"{100 * x['served']:.1f} %", class_="num"), h("td", training, class_="num"))
