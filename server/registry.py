"""The model manager: which versions of which models serve, kept in step with the repository on disk.

Lookups are synchronous (a request looks up and enqueues in one step of the loop, so a version swap can't retire
the batcher it picked). Loading runs in the Loader's threads; a version takes over only after its self-check, and
the versions it replaces finish their queued requests first.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from zoo.core import repository
from zoo.core.repository import shown
from zoo.server import poller
from zoo.server.errors import ControlDisabled, InvalidInput, ModelNotFound, ModelNotReady
from zoo.server.loader import Loader
from zoo.server.metrics import Metrics
from zoo.server.model_files import RepositoryFiles
from zoo.server.runtime import GpuRequired
from zoo.server.settings import ServerSettings
from zoo.server.versions import SCAN_TIMEOUT_S, Failure, LoadedVersion, ModelEntry, refresh

log = logging.getLogger(__name__)

__all__ = ["SCAN_TIMEOUT_S", "Failure", "LoadedVersion", "ModelEntry", "Registry"]

LOADER_THREADS = 4


class Registry:
    """Loads the repository's models, answers lookups, and follows the disk without failing requests."""

    def __init__(
        self,
        settings: ServerSettings,
        metrics: Metrics,
        on_change: Callable[[str, bool], None] | None = None,
        files: RepositoryFiles | None = None,
    ):
        self.settings = settings
        self.metrics = metrics
        self.files = files or RepositoryFiles(
            settings.repository, max_model_bytes=settings.max_model_bytes, allow_external_symlinks=settings.allow_external_symlinks
        )
        self.loader = Loader(LOADER_THREADS, settings.load_timeout)
        self._on_change = on_change
        self._models: dict[str, ModelEntry] = {}
        self._on_disk: set[str] = set()  # model folders seen at the last scan (for messages; no disk access per request)
        self._scanned_at = float("-inf")
        self._locks: dict[str, asyncio.Lock] = {}
        self._draining: set[asyncio.Task] = set()

    # lookups

    def names(self) -> list[str]:
        """Names of the models known to the server."""
        return sorted(self._models)

    def queued(self) -> list[tuple[str, int, int]]:
        """(model, version, rows waiting) of every loaded version."""
        return [(e.name, v, lv.batcher.queued_rows) for e in list(self._models.values()) for v, lv in list(e.loaded.items())]

    def entry(self, name: str) -> ModelEntry:
        """The entry of a known model; InvalidInput for an impossible name, ModelNotFound with what to do otherwise."""
        entry = self._models.get(name)
        if entry is not None:
            return entry
        self.files.check_name(name)
        raise ModelNotFound(self._not_found(name))

    async def explain_not_found(self, name: str) -> ModelNotFound:
        """The NOT_FOUND error for `name` after a fresh look at the disk (at most one scan a second, off the loop)."""
        now = time.monotonic()
        if now - self._scanned_at >= 1.0:
            self._scanned_at = now
            try:
                await self.scan()
            except Exception as e:  # the message falls back to what was known
                log.warning("listing the repository failed: %s", e)
        return ModelNotFound(self._not_found(name))

    def _not_found(self, name: str) -> str:
        mode = self.settings.model_control_mode
        if name in self._on_disk:
            how = {
                "explicit": "load it with RepositoryModelLoad (POST /v2/repository/models/NAME/load)",
                "poll": "it will be loaded at the next repository poll; its failure, if any, shows in RepositoryIndex",
                "none": "the server loads the repository only at start (--model-control-mode none): restart it, "
                "or run it with --model-control-mode poll or explicit",
            }[mode]
            return f"model {shown(name)} is in the repository but not loaded: {how}"
        known = ", ".join(self.names()) or "none"
        return f"unknown model {shown(name)}; models: {known}"

    def get(self, name: str, version: str = "") -> LoadedVersion:
        """The version to serve for (name, version string); raises ModelNotFound or ModelNotReady."""
        entry = self._models.get(name) or self.entry(name)
        if not version:
            lv = entry.default()
            if lv is None:
                if entry.unloaded:
                    raise ModelNotReady(f"model {shown(name)} is unloaded; load it with RepositoryModelLoad")
                reasons = "; ".join([entry.error] * bool(entry.error) + [f"v{v}: {f.reason}" for v, f in sorted(entry.failed.items())])
                reasons = reasons or "no version loaded"
                raise ModelNotReady(f"model {shown(name)} is not ready: {reasons}")
            return lv
        v = repository.parse_version(version)
        if v is not None and not entry.unloaded:
            lv = entry.loaded.get(v)
            if lv is not None:
                return lv
            if v in entry.failed:
                raise ModelNotReady(f"model {shown(name)} version {v} is not ready: {entry.failed[v].reason}")
        if entry.unloaded:
            raise ModelNotReady(f"model {shown(name)} is unloaded; load it with RepositoryModelLoad")
        versions = ", ".join(str(v) for v in sorted(entry.loaded)) or "none ready"
        raise ModelNotFound(f"unknown version {shown(version, 20)} of model {shown(name)}; versions: {versions}")

    async def index(self) -> list[tuple[str, str, str, str]]:
        """(name, version, state, reason) of every version known, and of model folders not loaded."""
        try:
            await self.scan()
        except Exception as exc:  # the index still answers from what is known
            log.warning("listing the repository failed: %s", exc)
        rows = []
        for name in sorted(set(self._models) | self._on_disk):
            e = self._models.get(name)
            if e is None:
                rows.append((name, "", "UNAVAILABLE", "not loaded"))
                continue
            for v in sorted(set(e.loaded) | set(e.failed)):
                if e.unloaded:
                    rows.append((name, str(v), "UNAVAILABLE", "unloaded"))
                elif v in e.loaded:
                    rows.append((name, str(v), "READY", e.loaded[v].files_changed))
                else:
                    rows.append((name, str(v), "UNAVAILABLE", e.failed[v].reason))
            if e.error:
                rows.append((name, "", "UNAVAILABLE", e.error))
            elif not e.loaded and not e.failed:
                rows.append((name, "", "UNAVAILABLE", "unloaded" if e.unloaded else "no version in the repository"))
        return rows

    # loading

    async def start(self) -> None:
        """Load what the model control mode says to load at start (none, poll: everything; explicit: --load-model)."""
        names = await self.scan()
        if self.settings.model_control_mode == "explicit":
            wanted = names if "*" in self.settings.load_model else [n for n in self.settings.load_model if n]
        else:
            wanted = names
        # Every load finishes before a GpuRequired is raised: no session is left half-made in a thread at exit.
        results = await asyncio.gather(*(self._load_logged(n) for n in wanted), return_exceptions=True)
        for r in results:
            if isinstance(r, BaseException):
                raise r

    async def _load_logged(self, name: str) -> None:
        try:
            await self.sync(name, retry_failed=True)
        except GpuRequired:
            raise
        except Exception as e:
            log.error("model %s not loaded: %s", name, e)

    async def scan(self) -> list[str]:
        """The model folders on disk (remembered for NOT_FOUND messages)."""
        names = await self.loader.run("listing the repository", self.files.model_names, timeout_s=SCAN_TIMEOUT_S)
        self._on_disk = set(names)
        return names

    async def load(self, name: str) -> ModelEntry:
        """RepositoryModelLoad: (re)load `name` from disk (explicit mode only)."""
        self._require_explicit("load")
        self.files.check_name(name)  # a bad name is refused before anything touches the disk
        entry = await self.sync(name, retry_failed=True)
        if entry.error:
            raise ModelNotReady(f"model {shown(name)} cannot be loaded: {entry.error}")
        if not entry.loaded and not entry.failed:
            raise ModelNotFound(f"no model {shown(name)} in the repository")
        return entry

    async def unload(self, name: str) -> None:
        """RepositoryModelUnload: stop serving `name`; its queued requests still finish (explicit mode only)."""
        self._require_explicit("unload")
        entry = self.entry(name)
        async with self._lock(name):
            retired = list(entry.loaded.values())
            entry.loaded, entry.unloaded = {}, True
            for lv in retired:
                self._retire(lv)
            self._notify(name, False)

    def _require_explicit(self, what: str) -> None:
        mode = self.settings.model_control_mode
        if mode != "explicit":
            raise ControlDisabled(
                f"cannot {what} models: the server runs with --model-control-mode {mode}; "
                "start it with --model-control-mode explicit to load and unload models by request"
            )

    def _lock(self, name: str) -> asyncio.Lock:
        return self._locks.setdefault(name, asyncio.Lock())

    async def sync(self, name: str, *, retry_failed: bool = False) -> ModelEntry:
        """Bring `name` in line with its folder: load new or changed versions, retire deleted ones."""
        async with self._lock(name):
            entry = self._models.get(name) or ModelEntry(name)
            was_ready = name in self._models and entry.ready
            try:
                on_disk = await self.loader.run(f"listing {name}", self.files.versions, name, timeout_s=SCAN_TIMEOUT_S)
            except InvalidInput:
                raise
            except Exception as e:  # unreadable or outside the repository: what serves keeps serving
                log.error("model %s: %s", name, e)
                entry.error = str(e)
                self._models[name] = entry
                return entry
            entry.error = ""
            loaded, failed = dict(entry.loaded), {v: f for v, f in entry.failed.items() if v in on_disk}
            retired: list[LoadedVersion] = []
            results = await asyncio.gather(*(refresh(self, name, v, loaded.get(v), failed.get(v), retry_failed) for v in on_disk))
            for v, (lv, failure) in zip(on_disk, results, strict=True):
                if failure is not None:
                    failed[v] = failure
                    continue
                failed.pop(v, None)
                current = loaded.get(v)
                if lv is not None and lv is not current:
                    if current is not None:
                        retired.append(current)
                    loaded[v] = lv
            for v in [v for v in loaded if v not in on_disk]:  # version folder deleted
                log.info("model %s v%s was deleted from the repository: draining and unloading it", name, v)
                retired.append(loaded.pop(v))
            if not on_disk:  # the whole model folder is gone (or holds no version)
                self._models.pop(name, None)
                entry.loaded, entry.failed = {}, {}
                for lv in retired:
                    self._retire(lv)
                if was_ready:
                    self._notify(name, False)
                return entry
            # The swap is one assignment in the loop: a request sees either the old set or the new.
            entry.loaded, entry.failed = loaded, failed
            entry.unloaded = False
            self._models[name] = entry
            for lv in retired:
                self._retire(lv)
            for v, lv in loaded.items():  # a version replaced in place keeps its gauge (retiring forgot the labels)
                self.metrics.set_provider(name, v, lv.provider)
            if entry.ready != was_ready or not was_ready:
                self._notify(name, entry.ready)
            return entry

    def _retire(self, lv: LoadedVersion) -> None:
        """Close a replaced version after its queued requests finished (in-flight work completes on it)."""
        self.metrics.forget(lv.card.name, lv.version, lv.provider)
        task = asyncio.get_running_loop().create_task(lv.batcher.close(self.settings.grace))
        self._draining.add(task)
        task.add_done_callback(self._draining.discard)

    def _notify(self, name: str, ready: bool) -> None:
        if self._on_change is not None:
            self._on_change(name, ready)

    async def poll_once(self) -> None:
        """One scan, every model synced concurrently (server/poller.py); returns when all are done."""
        await poller.poll_once(self)

    async def poll_forever(self, interval_s: float) -> None:
        """Rescan every interval_s seconds until cancelled (server/poller.py)."""
        await poller.poll_forever(self, interval_s)

    async def close(self) -> None:
        """Drain and stop every batcher."""
        for entry in self._models.values():
            for lv in entry.loaded.values():
                self._retire(lv)
        if self._draining:
            await asyncio.gather(*self._draining, return_exceptions=True)
