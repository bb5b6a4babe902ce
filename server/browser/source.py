"""What the model browser reads from the data plane: the repository index with each version's card and statistics,
and the figures exported with a version (read off the loop, through the guarded reader)."""

from __future__ import annotations

import logging

from zoo.core import repository
from zoo.core.repository import shown
from zoo.server.browser.catalog import VersionInfo, describe
from zoo.server.dataplane import DataPlane
from zoo.server.errors import ModelNotFound, NotFound
from zoo.server.loader import LoadTimeout
from zoo.server.registry import SCAN_TIMEOUT_S

log = logging.getLogger("zoo.server")


class BrowserSource:
    """The model browser's view of one data plane."""

    def __init__(self, plane: DataPlane):
        self.plane = plane
        self.registry = plane.registry

    async def catalog(self, name: str = "") -> list[VersionInfo]:
        """The repository index (of `name` alone, if given) with each serving version's card, provider and serving
        statistics; ModelNotFound for a model neither loaded nor in the repository."""
        if name:
            self.registry.files.check_name(name)  # InvalidInput for an impossible name, as every endpoint answers
        rows = await self.plane.index()
        if name:
            known = sorted({r[0] for r in rows})
            rows = [r for r in rows if r[0] == name]
            if not rows:
                raise ModelNotFound(f"unknown model {shown(name)}; models: {', '.join(known) or 'none'}")
        return describe(rows, self.registry, lambda n, v: self.plane.metrics.merged_stats(n, v, self.plane.stats_folder))

    async def figure(self, name: str, version: str, figure: str) -> bytes:
        """The PNG of a figure (zoo.core.repository.FIGURES) exported with a serving version: read in a loader thread
        through the guarded reader and checked against its card's SHA-256; NotFound when there is none to serve."""
        lv = await self.plane.lookup(name, version)
        digest = repository.figures(lv.card.extra).get(figure)
        if digest is None:
            raise NotFound(f"model {shown(name)} version {lv.version} has no figure {shown(figure)}")
        try:
            return await self.registry.loader.run(
                f"reading {name} v{lv.version} {figure}",
                self.registry.files.read_figure,
                name,
                lv.version,
                figure,
                digest,
                timeout_s=SCAN_TIMEOUT_S,
            )
        except (ValueError, OSError, LoadTimeout) as e:
            # The reason names server paths: it goes to the log, the client learns only that the file is unusable.
            log.warning("model %s v%s: figure %s not served: %s", name, lv.version, figure, e)
            raise NotFound(
                f"the {figure} figure of model {shown(name)} version {lv.version} cannot be served: its file is "
                "missing, unreadable or not the one recorded at export (the server log says which)"
            ) from None
