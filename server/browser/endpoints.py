"""The model browser's endpoints on the HTTP port: `/` and a page per model version, their figures and assets.

Handlers ask the data plane (which reads figure files off the loop, through the guarded reader) and render with
pages.py. Their errors are pages too: the same status table as the v2 API, the message escaped into HTML.
"""

from __future__ import annotations

import orjson

from zoo.core import repository
from zoo.core.repository import shown
from zoo.server.browser import monitoring, pages
from zoo.server.browser.assets import ASSETS
from zoo.server.browser.catalog import VersionInfo
from zoo.server.browser.paths import version_path
from zoo.server.browser.source import BrowserSource
from zoo.server.dataplane import DataPlane
from zoo.server.errors import ModelNotFound, NotFound
from zoo.server.http_api.routes import Call, Handler, Reply
from zoo.server.http_api.status import status_for

HTML_TYPE, PNG_TYPE = "text/html", "image/png"
# Everything comes from this server; no inline code, so injected markup could not run even if escaping failed.
POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "form-action 'none'; base-uri 'none'; frame-ancestors 'none'"
)
HEADERS = {"Content-Security-Policy": POLICY, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
PAGE = "/models/{name}"
VERSION_PAGE = "/models/{name}/versions/{version}"


class Browser:
    """The model browser over one data plane; `token_required` only changes the curl command it shows."""

    def __init__(self, plane: DataPlane, *, token_required: bool = False):
        self.plane = plane
        self.source = BrowserSource(plane)
        self.token_required = token_required

    def routes(self) -> list[tuple[str, str, Handler]]:
        """(method, path, handler), as Endpoints.routes() gives them."""
        table: list[tuple[str, str, Handler]] = [
            ("GET", "/", _as_page(self.index)),
            ("GET", PAGE, _as_page(self.model)),
            ("GET", VERSION_PAGE, _as_page(self.model)),
            ("GET", VERSION_PAGE + "/monitor.json", self.monitor),
            ("GET", VERSION_PAGE + "/{figure}.png", _as_page(self.figure)),
        ]
        return table + [("GET", path, _asset(body, kind)) for path, (body, kind) in ASSETS.items()]

    async def index(self, call: Call) -> Reply:
        return _html(pages.index_page(await self.source.catalog(), self._server()))

    async def model(self, call: Call) -> Reply:
        name, version = call.params["name"], call.params.get("version")
        infos = await self.source.catalog(name)
        shown = _pick(infos, name, version)
        section = None
        if shown.card is not None and self.plane.metrics.monitor is not None:
            url = version_path(shown.name, shown.version) + "/monitor.json"
            merged = self.plane.metrics.monitor.merged(shown.name, int(shown.version), self.plane.stats_folder)
            section = monitoring.section(monitoring.figures(merged), url)
        return _html(pages.model_page(infos, shown, self._server(), self.token_required, section))

    async def monitor(self, call: Call) -> Reply:
        """The monitoring figures of a serving version, as JSON (the page's script redraws its section from them)."""
        lv = await self.plane.lookup(call.params["name"], call.params["version"])
        monitor = self.plane.metrics.monitor
        if monitor is None:
            raise NotFound("monitoring is off on this server (--no-monitoring)")
        body = orjson.dumps(monitoring.figures(monitor.merged(lv.card.name, lv.version, self.plane.stats_folder)))
        return Reply(body=body, content_type="application/json", headers={**HEADERS, "Cache-Control": "no-store"})

    async def figure(self, call: Call) -> Reply:
        p = call.params
        png = await self.source.figure(p["name"], p["version"], p["figure"])
        # Private: behind the bearer token the bytes are a user's; the browser may keep them for a page's life.
        return Reply(body=png, content_type=PNG_TYPE, headers={**HEADERS, "Cache-Control": "private, max-age=60"})

    def _server(self) -> tuple[str, str]:
        name, version, _extensions = self.plane.server_metadata()
        return name, version


def _pick(infos: list[VersionInfo], name: str, version: str | None) -> VersionInfo:
    """The version a page shows: the one named, else the default (else the newest row, to say why none serves)."""
    if version is None:
        return next((i for i in infos if i.default), None) or next((i for i in infos if i.card), None) or infos[-1]
    v = repository.parse_version(version)
    found = next((i for i in infos if v is not None and i.version == str(v)), None)
    if found is None:
        listed = ", ".join(i.version for i in infos if i.version) or "none"
        raise ModelNotFound(f"unknown version {shown(version, 20)} of model {shown(name)}; versions: {listed}")
    return found


def _html(page: str, status: int = 200) -> Reply:
    return Reply(status, page.encode(), HTML_TYPE, {**HEADERS, "Cache-Control": "no-store"}, charset="utf-8")


def _as_page(handler: Handler) -> Handler:
    """`handler` with its domain errors answered as HTML pages (status from the API's table, message escaped)."""

    async def page(call: Call) -> Reply:
        try:
            return await handler(call)
        except Exception as e:
            status, message = status_for(e)
            return _html(pages.error_page(status, message), status)

    return page


def _asset(body: bytes, kind: str) -> Handler:
    async def asset(call: Call) -> Reply:
        return Reply(
            body=body,
            content_type=kind,
            headers={**HEADERS, "Cache-Control": "no-cache"},
            charset="utf-8" if kind.startswith("text/") else None,
        )

    return asset
