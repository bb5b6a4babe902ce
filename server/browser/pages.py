"""The model browser's HTML: the index of every model version, a version's page, and error pages.

Pure functions of the data plane's catalog (server/catalog.py); every string a model or a client provides goes
through html.h(), which escapes it. The pages load only the stylesheet, script and icon of server/http_api/assets.py
and the version's figures, all from this server.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any
from urllib.parse import quote

from zoo.server.browser import try_it
from zoo.server.browser.assets import ICON, SCRIPT, STYLESHEET
from zoo.server.browser.catalog import VersionInfo
from zoo.server.browser.html import Child, Html, h, join, table

LONG_LIST = 24  # name lists longer than this are collapsed
FIGURE_TEXT = {  # figure -> (caption, what the image shows, for people who cannot see it)
    "training_curve": ("Training curve", "loss and accuracy per epoch on the training and validation splits"),
    "confusion_matrix": ("Confusion matrix", "counts of each true class (rows) against the predicted class (columns) on the test split"),
}


def model_path(name: str) -> str:
    """The page of a model (its default version)."""
    return f"/models/{quote(name, safe='')}"


def version_path(name: str, version: str) -> str:
    """The page of one version; its figures live beneath it."""
    return f"{model_path(name)}/versions/{quote(version, safe='')}"


def index_page(infos: Sequence[VersionInfo], server: tuple[str, str]) -> Html:
    """Every model and version: an overview table, then each version's facts and serving statistics."""
    names = sorted({i.name for i in infos})
    ready = sum(i.state == "READY" for i in infos)
    intro = h(
        "p",
        f"{len(names)} model{'s' * (len(names) != 1)}, {ready} version{'s' * (ready != 1)} serving. "
        "Serving statistics are the server's own, as of this page's loading; reload to refresh them.",
    )
    if not infos:
        intro = h(
            "p",
            "The repository holds no models yet: export one into it (zoo train iris, then zoo export iris), "
            "or run zoo bootstrap to fill it with the default zoo.",
        )
    sections = [
        h(
            "section",
            h("h2", h("a", name, href=model_path(name)), id=f"model-{name}"),
            [_version_section(i) for i in infos if i.name == name],
            aria_labelledby=f"model-{name}",
        )
        for name in names
    ]
    main = [h("h1", "Model zoo"), intro, _overview(infos) if infos else None, sections]
    return _document("Model zoo", main, server)


def model_page(infos: Sequence[VersionInfo], shown: VersionInfo, server: tuple[str, str], token_required: bool) -> Html:
    """One version of a model: its facts, serving statistics, training figures and the try-it form."""
    name = shown.name
    versions = [i for i in infos if i.version]
    nav = (
        h(
            "nav",
            h("h2", "Versions", class_="inline"),
            " ",
            join(
                [
                    h("a", i.version, href=version_path(name, i.version), aria_current="page" if i is shown else None, title=i.state)
                    for i in versions
                ],
                " ",
            ),
            aria_label="Versions",
        )
        if versions
        else None
    )
    problems = [h("p", h("strong", "Model: "), i.reason, class_="reason") for i in infos if not i.version]
    title = f"{name} version {shown.version}" if shown.version else name
    main = [
        h("p", h("a", "All models", href="/"), class_="crumbs"),
        h("h1", name, " ", h("small", f"version {shown.version}") if shown.version else None),
        _state_line(shown),
        problems,
        nav,
        _contents() if shown.card else None,
        h("section", h("h2", "Facts", id="facts"), _version_body(shown), aria_labelledby="facts") if shown.card else None,
        [_figures(shown), try_it.form(shown, token_required)] if shown.card else None,
    ]
    return _document(title, main, server, script=shown.card is not None)


def error_page(status: int, message: str, server: tuple[str, str] | None = None) -> Html:
    """An error as a page: the status, the message (escaped), and the way back."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    main = [h("h1", f"{status} {phrase}"), h("p", message), h("p", h("a", "All models", href="/"))]
    return _document(f"{status} {phrase}", main, server)


# layout


def _document(title: str, main: Child, server: tuple[str, str] | None, script: bool = False) -> Html:
    head = h(
        "head",
        h("meta", charset="utf-8"),
        h("meta", name="viewport", content="width=device-width, initial-scale=1"),
        h("title", f"{title} · zoo"),
        h("link", rel="stylesheet", href=STYLESHEET),
        h("link", rel="icon", href=ICON, type="image/svg+xml"),
        h("script", src=SCRIPT, defer=True) if script else None,
    )
    footer = h(
        "footer",
        h(
            "p",
            f"{server[0]} {server[1]} · " if server else "",
            "The KServe v2 REST API lives under ",
            h("code", "/v2"),
            "; this browser is at ",
            h("a", h("code", "/"), href="/"),
            ".",
        ),
    )
    return Html("<!doctype html>\n" + h("html", head, h("body", h("main", main), footer), lang="en"))


def _contents() -> Html:
    """Links to a serving version's sections: the form comes last, below the facts, but one tap away."""
    links = [h("a", text, href=f"#{anchor}") for anchor, text in (("facts", "Facts"), ("training", "Training"), ("try-it", "Try it"))]
    return h("nav", "On this page: ", join(links, " · "), aria_label="On this page")


def _overview(infos: Sequence[VersionInfo]) -> Html:
    head = ("Model", "Version", "State", "Provider", "Requests", "Rows", "Mean batch (rows)", "Mean latency (ms)")
    rows = []
    for i in infos:
        s = i.serving
        rows.append(
            h(
                "tr",
                h("th", h("a", i.name, href=model_path(i.name)), scope="row"),
                h("td", h("a", i.version, href=version_path(i.name, i.version)) if i.version else "—"),
                h(
                    "td",
                    i.state,
                    " (default)" if i.default else "",
                    h("br") if i.reason else None,
                    h("span", i.reason, class_="reason") if i.reason else None,
                ),
                h("td", i.provider or "—"),
                [
                    h("td", _value(v), class_="num")
                    for v in ((s.requests, s.rows, s.mean_batch_rows, s.mean_latency_ms) if s else ("—",) * 4)
                ],
            )
        )
    return table("Every model version, its state and how it has served", head, rows, numeric=4)


def _version_section(info: VersionInfo) -> Html:
    heading = h(
        "h3",
        h("a", f"Version {info.version}", href=version_path(info.name, info.version)) if info.version else "Model",
        f" — {info.state}",
        " (default)" if info.default else "",
    )
    if info.card is None:
        return h("article", heading, h("p", info.reason or "not serving", class_="reason"))
    return h("article", heading, h("p", info.reason, class_="reason") if info.reason else None, _version_body(info))


def _state_line(info: VersionInfo) -> Html:
    if info.card is None:
        return h("p", h("strong", info.state), ": ", info.reason or "not serving", class_="reason")
    default = " It answers requests that name no version." if info.default else ""
    return h(
        "p",
        h("strong", info.state),
        f" on {info.provider}.{default}",
        h("br") if info.reason else None,
        h("span", info.reason, class_="reason") if info.reason else None,
    )


def _version_body(info: VersionInfo) -> Html:
    """A serving version's facts: a definition list, then its training metrics, parity report and serving statistics."""
    card = info.card
    assert card is not None  # only versions that serve have a body
    meta = card.extra
    facts = [
        ("Task", card.task),
        ("Execution provider", info.provider),
        ("Default threshold", _value(card.default_threshold)),
        ("Classes", _names(card.class_names, "classes")),
        ("Features", _names(card.feature_names, "features")),
        ("Dataset", _value(meta.get("dataset", "—"))),
        ("Dataset fingerprint", h("code", _value(meta.get("dataset_fingerprint", "—")))),
        (
            "Exported",
            _value(
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
    metrics = meta.get("metrics") if isinstance(meta.get("metrics"), dict) else {}
    parity: dict = meta["parity"] if isinstance(meta.get("parity"), dict) else {}
    passed = parity.get("passed")
    verdict = "passed" if passed is True else "FAILED" if passed is False else "not recorded"
    label = f"{info.name} v{info.version}"
    return join(
        [
            dl,
            _pairs(f"Training metrics of {label}", "Metric", metrics) if metrics else h("p", "No training metrics recorded."),
            _pairs(f"Export parity check of {label}: {verdict}", "Check", {k: v for k, v in parity.items() if k != "passed"})
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


def _figures(info: VersionInfo) -> Html:
    items = []
    for figure in info.figures:
        caption, what = FIGURE_TEXT[figure]
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


# pieces


def _pairs(caption: str, what: str, values: dict[str, Any]) -> Html:
    rows = [h("tr", h("th", str(k).replace("_", " "), scope="row"), h("td", _value(v))) for k, v in values.items()]
    return table(caption, (what, "Value"), rows)


def _names(names: Sequence[str], what: str) -> Html:
    listed = h("ol", [h("li", n) for n in names], class_="names")
    if len(names) <= LONG_LIST:
        return join([f"{len(names)}: ", listed])
    return h("details", h("summary", f"{len(names)} {what}"), listed)


def _value(v: Any) -> str:
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
