"""The model browser's pages without a browser: HTML that is plain and accessible, the facts and statistics of every
version, figures served only as exported, model-provided strings escaped, errors as pages, the token in front."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import pytest

from tests.integration.http.conftest import HOSTILE_CLASSES, HOSTILE_FEATURE, WIDE_FEATURES
from tests.integration.http.http_helpers import call, infer, infer_json
from tests.integration.server.server_helpers import ThreadServer, rows_for, settings_for
from zoo.core import repository

HTML = "text/html; charset=utf-8"
TOKEN = "page-token"
PAGES = ["/", "/models/iris", "/models/iris/versions/1", "/models/iris/versions/3", "/models/breast-cancer", "/models/broken",
         "/models/wide", "/models/escaped", "/models/tampered"]


class Page(HTMLParser):
    """A parsed page: its elements (tag, attributes, parent tags), its text, and the text inside each element with an id."""

    def __init__(self, body: bytes):
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None], list[str]]] = []
        self.stack: list[str] = []
        self.chunks: list[str] = []
        self.feed(body.decode("utf-8"))
        self.close()
        self.text = " ".join(" ".join(self.chunks).split())

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs), list(self.stack)))
        if tag not in ("meta", "link", "input", "img", "br"):
            self.stack.append(tag)

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes <{self.stack[-1] if self.stack else None}>"
        self.stack.pop()

    def handle_data(self, data):
        self.chunks.append(data)

    def all(self, tag: str) -> list[dict[str, str | None]]:
        return [a for t, a, _ in self.elements if t == tag]

    def one(self, tag: str, **attrs: str) -> dict[str, str | None]:
        found = [a for a in self.all(tag) if all(a.get(k.rstrip("_").replace("_", "-")) == v for k, v in attrs.items())]
        assert len(found) == 1, (tag, attrs, found)
        return found[0]


def check_plain_and_accessible(page: Page) -> None:
    """A <main>, one <h1>, a language and a viewport; captioned tables with header cells; every input labelled;
    unique ids; nothing loaded from anywhere but this server; no inline script."""
    tags = [t for t, _, _ in page.elements]
    assert tags.count("main") == 1 and tags.count("h1") == 1
    assert page.one("html")["lang"] == "en" and "width=device-width" in page.one("meta", name="viewport")["content"]
    tables = [i for i, t in enumerate(tags) if t == "table"]
    assert all(tags[i + 1] == "caption" for i in tables)
    assert all("table" in parents for t, _, parents in page.elements if t == "th")
    ids = [a["id"] for _, a, _ in page.elements if "id" in a]
    assert len(ids) == len(set(ids)), "ids must be unique"
    labelled = {a["for"] for a in page.all("label")}
    for tag in ("input", "textarea"):
        for a in page.all(tag):
            assert a.get("id") in labelled, f"<{tag} id={a.get('id')}> has no label"
    for tag, attr in (("a", "href"), ("img", "src"), ("link", "href"), ("script", "src")):
        for a in page.all(tag):
            here = tag == "a" and a[attr][:1] == "#" and a[attr][1:] in ids  # a link within the page
            assert a.get(attr, "").startswith("/") or here, f"<{tag} {attr}={a.get(attr)}> must be this server's"
    assert all(a.get("src") for a in page.all("script")), "no inline script: the CSP forbids it"


@pytest.fixture(scope="module")
def port(browsed_repo):
    srv = ThreadServer(settings_for(browsed_repo)).start()
    yield srv.server.http_port
    srv.stop()


def get_page(port: int, path: str, status: int = 200, headers: dict | None = None) -> Page:
    a = call(port, "GET", path, headers=headers)
    assert (a.status, a.headers.get("Content-Type")) == (status, HTML), (path, a.status, a.body[:300])
    policy = a.headers.get("Content-Security-Policy")
    assert "default-src 'none'" in policy and "script-src 'self'" in policy and a.headers.get("X-Content-Type-Options") == "nosniff"
    page = Page(a.body)
    check_plain_and_accessible(page)
    return page


@pytest.mark.parametrize("path", PAGES)
def test_every_page_is_plain_accessible_html(port, path):
    get_page(port, path)


def test_the_index_is_one_compact_table_of_every_version_and_how_it_serves(port, browsed_repo):
    for n in (2, 1, 3):  # one at a time: three requests
        assert infer(port, "iris", infer_json(rows_for(browsed_repo, "iris", n, seed=n)), version="2").status == 200
    a = call(port, "GET", "/")
    page = get_page(port, "/")
    index = call(port, "POST", "/v2/repository/index").json()
    for row in index:
        assert f"/models/{row['name']}" in {x["href"] for x in page.all("a")}
        assert row["reason"] in page.text  # e.g. why `broken` does not load
    stats = call(port, "GET", "/v2/models/iris/versions/2/stats").json()["model_stats"][0]
    success = stats["inference_stats"]["success"]
    card = repository.read_card(browsed_repo, "iris", 2)
    row = overview_row(a.body, "iris", "2")
    assert row[:5] == ["iris", "2", "READY", "CPU", "multiclass"]
    assert row[5] == f"{100 * card.extra['metrics']['test_accuracy']:.1f} %"
    assert row[6] == "3" and stats["inference_count"] == 6
    assert float(row[7]) == pytest.approx(success["ns"] / success["count"] / 1e6, rel=1e-3)
    assert len(row) == 8
    # Compact: the full cards are on the versions' pages, not repeated here.
    assert card.extra["dataset_fingerprint"] not in page.text and card.feature_names[0] not in page.text


def test_a_version_page_shows_its_facts_in_words_a_reader_knows(port, browsed_repo):
    for name, version in [("iris", 1), ("iris", 2), ("iris", 3), ("breast-cancer", 1), ("wide", 1)]:
        card = repository.read_card(browsed_repo, name, version)
        page = get_page(port, f"/models/{name}/versions/{version}")
        for fact in [card.extra["dataset_fingerprint"], card.task, *card.class_names, *card.feature_names[:3],
                     f"Does the exported model answer like the trained one? ({name} v{version}: passed)",
                     f"How {name} v{version} trained", "Accuracy on the test split", "Share of rows with the same decision",
                     f"Serving statistics of {name} v{version} since it loaded"]:
            assert fact in page.text, (name, version, fact)
        assert "one hot agreement" not in page.text and "max abs diff" not in page.text
        # when it was trained (from the run, also for versions exported before zoo recorded it) and exported
        trained = card.extra.get("trained_at")
        assert trained, "export records when the run was trained"
        assert f"Trained {trained[:10]} {trained[11:16]} UTC" in page.text
        exported = card.extra["exported_at"]
        assert f"Exported {exported[:10]} {exported[11:16]} UTC" in page.text


def overview_row(body: bytes, name: str, version: str) -> list[str]:
    """The text of each cell of a row of the index's overview table."""

    class Rows(HTMLParser):
        def __init__(self):
            super().__init__(convert_charrefs=True)
            self.rows: list[list[str]] = []
            self.tables = 0

        def handle_starttag(self, tag, attrs):
            self.tables += tag == "table"
            if self.tables == 1 and tag == "tr":
                self.rows.append([])
            elif self.tables == 1 and tag in ("td", "th") and self.rows:
                self.rows[-1].append("")

        def handle_data(self, data):
            if self.tables == 1 and self.rows and self.rows[-1]:
                self.rows[-1][-1] = " ".join((self.rows[-1][-1] + " " + data).split())

    parser = Rows()
    parser.feed(body.decode())
    return next(r for r in parser.rows if r[:2] == [name, version])


def test_a_version_page_shows_its_figures_and_the_try_it_form(port, browsed_repo):
    page = get_page(port, "/models/iris")  # the default version: 3, exported with figures
    card = repository.read_card(browsed_repo, "iris", 3)
    folder = repository.version_dir(browsed_repo, "iris", 3)
    images = page.all("img")
    recorded = {f: fname for f, fname in repository.FIGURES.items() if f in card.extra["figures"]}  # the run's and the export's
    assert {"training_curve", "confusion_matrix", "reliability_diagram"} <= set(recorded)
    assert [i["src"] for i in images] == [f"/models/iris/versions/3/{f}.png" for f in recorded]
    assert all(i["alt"] for i in images)
    for figure, fname in recorded.items():
        a = call(port, "GET", f"/models/iris/versions/3/{figure}.png")
        assert (a.status, a.headers.get("Content-Type")) == (200, "image/png")
        assert a.body == (folder / fname).read_bytes() and repository.sha256_bytes(a.body) == card.extra["figures"][figure]
    form = page.one("form", id="try")
    assert form["data-infer"] == "/v2/models/iris/versions/3/infer" and int(form["data-features"]) == 4
    assert json.loads(form["data-classes"]) == card.class_names and "data-token" not in form
    # the request's names come from the contract through the page; the script restates none of them
    assert (form["data-input"], form["data-datatype"], form["data-threshold-param"]) == ("input", "FP32", "threshold")
    assert json.loads(form["data-outputs"]) == {"probabilities": "probabilities", "one_hot": "one_hot", "label": "label"}
    body = call(port, "GET", "/models/iris").body.decode()
    assert body.index('id="try-it"') < body.index('id="facts"') < body.index('id="training"')  # "Try it" near the top
    labels = {a["for"]: a for a in page.all("label")}
    means = card.extra["normalization"]["mean"]
    for i, name in enumerate(card.feature_names):
        field = page.one("input", id=f"feature-{i}")
        assert f"feature-{i}" in labels and name in page.text and field["placeholder"] == f"{means[i]:.4g}"
    assert page.one("input", id="threshold")["value"] == f"{card.default_threshold:g}"
    assert "open" in page.one("details", id="fields")  # four fields show at once

    older = get_page(port, "/models/iris/versions/1")  # exported from a run without plots: only the export's own figure
    assert [i["src"] for i in older.all("img")] == ["/models/iris/versions/1/reliability_diagram.png"] and older.one("form", id="try")

    wide = get_page(port, "/models/wide")  # hundreds of fields: behind a closed <details>, the pasted row first
    assert "open" not in wide.one("details", id="fields") and len(wide.all("input")) == WIDE_FEATURES + 1  # + the threshold
    assert wide.one("textarea", id="row")


@pytest.mark.parametrize("path, says", [
    ("/models/tampered/versions/1/training_curve.png", "cannot be served"),  # bytes differ from the card's SHA-256
    ("/models/tampered/versions/1/confusion_matrix.png", "cannot be served"),  # recorded, but no file
    ("/models/iris/versions/1/training_curve.png", "has no figure"),
    ("/models/iris/versions/3/model.png", "has no figure"),  # only FIGURES are files the server will name
    ("/models/iris/versions/3/metadata.png", "has no figure"),
    ("/models/broken/versions/1/training_curve.png", "not ready"),
])
def test_figures_are_served_only_as_exported(port, browsed_repo, path, says):
    page = get_page(port, path, 503 if says == "not ready" else 404)
    assert says in page.text
    if says == "cannot be served":  # the reason names server paths: the log has it, not the page
        assert str(browsed_repo) not in page.text


@pytest.mark.parametrize("path", ["/models/iris/versions/3/..%2F..%2F3%2Fmodel.png", "/models/iris/versions/3/%2E%2E/model.png",
                                  "/models/..%2Firis/versions/3/training_curve.png"])
def test_no_path_from_a_request_reaches_a_file(port, path):
    a = call(port, "GET", path)
    assert a.status in (400, 404) and a.headers.get("Content-Type") != "image/png"


def test_model_provided_strings_are_escaped(port, browsed_repo):
    index = call(port, "GET", "/")  # the compact index shows none of a card's free text, raw or otherwise
    assert "/models/escaped" in index.body.decode() and not any(raw.encode() in index.body for raw in HOSTILE_CLASSES)
    a = call(port, "GET", "/models/escaped")
    for raw in [*HOSTILE_CLASSES, HOSTILE_FEATURE, "<i>iris</i>"]:
        assert raw.encode() not in a.body
        assert raw in Page(a.body).text  # shown as text, exactly
    assert b"&lt;script&gt;alert(&quot;class&quot;)&lt;/script&gt;" in a.body
    page = get_page(port, "/models/escaped")
    assert json.loads(page.one("form", id="try")["data-classes"]) == HOSTILE_CLASSES
    label = [a for a in page.all("label") if a["for"] == "feature-0"]
    assert label and HOSTILE_FEATURE in page.text
    # and what a client puts in the path
    bad = get_page(port, "/models/%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E", 400)
    assert "invalid model name" in bad.text and "<img src=x onerror=alert(1)>" in bad.text and not bad.all("img")
    bad = get_page(port, "/models/iris/versions/%3Cb%3Ehi%3C%5Cb%3E", 404)
    assert "unknown version '<b>hi<\\\\b>'" in bad.text and not bad.all("b")


@pytest.mark.parametrize("path, says", [
    ("/models/nope", "unknown model 'nope'; models: breast-cancer, broken, escaped, iris, tampered, wide"),
    ("/models/iris/versions/9", "unknown version '9' of model 'iris'; versions: 1, 2, 3"),
    ("/models/iris/versions/01", "unknown version '01' of model 'iris'"),
])
def test_unknown_models_and_versions_are_404_pages(port, path, says):
    page = get_page(port, path, 404)
    assert says in page.text and {"href": "/"} in page.all("a")


def test_the_assets_are_served_by_the_server(port):
    for path, kind in [("/assets/zoo.css", "text/css; charset=utf-8"), ("/assets/try.js", "text/javascript; charset=utf-8"),
                       ("/assets/icon.svg", "image/svg+xml")]:
        a = call(port, "GET", path)
        assert (a.status, a.headers.get("Content-Type")) == (200, kind) and a.body
        assert b"http://" not in a.body.replace(b"http://www.w3.org/2000/svg", b"") and b"https://" not in a.body


def test_the_token_guards_every_page(browsed_repo):
    srv = ThreadServer(settings_for(browsed_repo, auth_token=TOKEN)).start()
    port = srv.server.http_port
    auth = {"Authorization": f"Bearer {TOKEN}"}
    try:
        for path in ["/", "/models/iris", "/models/iris/versions/3", "/models/iris/versions/3/training_curve.png",
                     "/assets/try.js", "/models/nope"]:
            a = call(port, "GET", path)
            assert a.status == 401 and a.headers.get("WWW-Authenticate") == "Bearer", path
            assert call(port, "GET", path, headers={"Authorization": "Bearer wrong"}).status == 401
            assert call(port, "GET", path, headers=auth).status == (404 if path == "/models/nope" else 200)
        page = get_page(port, "/models/iris", headers=auth)
        assert page.one("form", id="try")["data-token"] == "required"  # the curl command it shows sends the token
    finally:
        srv.stop()


def test_the_monitoring_figures_are_served_as_json_for_the_page(port, browsed_repo):
    page = get_page(port, "/models/breast-cancer")
    section = page.one("section", id="monitor")
    assert section["data-monitor"] == "/models/breast-cancer/versions/1/monitor.json"
    before = call(port, "GET", section["data-monitor"]).json()
    x = rows_for(browsed_repo, "breast-cancer", 5, seed=9)
    assert infer(port, "breast-cancer", infer_json(x)).status == 200
    after = call(port, "GET", section["data-monitor"]).json()
    assert after["rows"] == before["rows"] + 5 and after["window_rows"] == min(after["rows"], after["window_size"])
    card = repository.read_card(browsed_repo, "breast-cancer", 1)
    assert [x["label"] for x in after["labels"]] == [*card.class_names, "no class"]
    assert sum(x["served"] for x in after["labels"]) == pytest.approx(1.0)
    assert len(after["features"]) == 10 and all(f["verdict"] in ("stable", "moving", "shifted") for f in after["features"])
    assert call(port, "GET", "/models/breast-cancer/versions/7/monitor.json").status == 404
