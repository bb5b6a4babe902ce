"""The model browser's HTML: the index of every model version, a version's page, and error pages.

Pure functions of the catalog (server/browser/catalog.py); every string a model or a client provides goes
through html.h(), which escapes it. The pages load only the stylesheet, script and icon of server/browser/assets.py
and the version's figures, all from this server.
"""

from __future__ import annotations

from collections.abc import Sequence
from http import HTTPStatus

from zoo.server.browser import facts, search, try_it
from zoo.server.browser.assets import ICON, SCRIPT, STYLESHEET
from zoo.server.browser.catalog import VersionInfo
from zoo.server.browser.html import Child, Html, h, join, table
from zoo.server.browser.paths import model_path, version_path


def index_page(infos: Sequence[VersionInfo], server: tuple[str, str]) -> Html:
    """Every model and version in one compact table; each version's full card is on its own page."""
    names = sorted({i.name for i in infos})
    ready = sum(i.state == "READY" for i in infos)
    intro = h(
        "p",
        f"{len(names)} model{'s' * (len(names) != 1)}, {ready} version{'s' * (ready != 1)} serving. "
        "Serving statistics are the server's own, as of this page's loading; reload to refresh them. "
        "Open a model for its facts, training figures and a form to try it.",
    )
    if not infos:
        intro = h(
            "p",
            "The repository holds no models yet: export one into it (zoo train iris, then zoo export iris), "
            "or run zoo bootstrap to fill it with the default zoo.",
        )
    main = [h("h1", "Model zoo"), intro, _overview(infos) if infos else None]
    return _document("Model zoo", main, server)


def model_page(
    infos: Sequence[VersionInfo], shown: VersionInfo, server: tuple[str, str], token_required: bool, monitor: Html | None = None
) -> Html:
    """One version of a model: the try-it form, its monitoring section (when on), facts and training figures."""
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
    searched = search.section(shown.card) if shown.card else None
    main = [
        h("p", h("a", "All models", href="/"), class_="crumbs"),
        h("h1", name, " ", h("small", f"version {shown.version}") if shown.version else None),
        _state_line(shown),
        problems,
        nav,
        _contents(tuned=searched is not None) if shown.card else None,
        try_it.form(shown, token_required) if shown.card else None,
        monitor if shown.card else None,
        h("section", h("h2", "Facts", id="facts"), facts.version_body(shown), aria_labelledby="facts") if shown.card else None,
        searched,
        facts.figures(shown) if shown.card else None,
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


def _contents(tuned: bool) -> Html:
    """Links to a serving version's sections, in page order (Search only for a version zoo tune trained)."""
    search = (("search", "Search"),) if tuned else ()
    sections = (("try-it", "Try it"), ("monitoring", "Monitoring"), ("facts", "Facts"), *search, ("training", "Training"))
    links = [h("a", text, href=f"#{anchor}") for anchor, text in sections]
    return h("nav", "On this page: ", join(links, " · "), aria_label="On this page")


def _overview(infos: Sequence[VersionInfo]) -> Html:
    head = ("Model", "Version", "State", "Provider", "Task", "Test accuracy", "Requests", "Mean latency (ms)")
    rows = []
    for i in infos:
        s = i.serving
        metrics = i.card.extra.get("metrics") if i.card else None
        accuracy = metrics.get("test_accuracy") if isinstance(metrics, dict) else None
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
                h("td", i.provider.removesuffix("ExecutionProvider") or "—", title=i.provider or None),  # "CPU", "CUDA"
                h("td", i.card.task if i.card else "—"),
                h("td", facts.percent(accuracy), class_="num"),
                [h("td", facts.value(v), class_="num") for v in ((s.requests, s.mean_latency_ms) if s else ("—",) * 2)],
            )
        )
    return table("Every model version, its state and how it has served", head, rows, numeric=3)


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
