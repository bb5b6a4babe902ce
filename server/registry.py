"""The model manager: which versions of which models are loaded, hot reload, and unload."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Callable

from zoo.core import repository
from zoo.core.repository import ModelCard
from zoo.server.batcher import Batcher
from zoo.server.errors import ModelNotFound, ModelNotReady
from zoo.server.metrics import Metrics
from zoo.server.runtime import GpuRequired, OnnxModel
from zoo.server.settings import ServerSettings

log = logging.getLogger(__name__)


@dataclass
class LoadedVersion:
    """One version ready to serve: its card, its session and its batcher."""

    card: ModelCard
    model: OnnxModel
    batcher: Batcher

    @property
    def version(self) -> int:
        """The version number."""
        return self.card.version

    @property
    def provider(self) -> str:
        """The execution provider really running it."""
        return self.model.provider


@dataclass
class ModelEntry:
    """Everything known about one model name."""

    name: str
    loaded: dict[int, LoadedVersion] = field(default_factory=dict)
    failed: dict[int, tuple[str | None, str]] = field(default_factory=dict)  # version -> (sha256 tried, reason)
    unloaded: bool = False

    def default(self) -> LoadedVersion | None:
        """The version served when none is named: the highest one that loaded and passed its self-check."""
        return self.loaded[max(self.loaded)] if self.loaded and not self.unloaded else None

    @property
    def ready(self) -> bool:
        """Whether a request without a version would be served."""
        return self.default() is not None


class Registry:
    """Loads the repository's models, answers lookups, and swaps versions without failing requests."""

    def __init__(self, settings: ServerSettings, metrics: Metrics, on_change: Callable[[str, bool], None] | None = None):
        self.settings = settings
        self.metrics = metrics
        self.root = settings.repository
        self._on_change = on_change
        self._models: dict[str, ModelEntry] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._draining: set[asyncio.Task] = set()

    # lookups (synchronous: a request looks up and enqueues in one step of the loop)

    def names(self) -> list[str]:
        """Names of the models known to the server."""
        return sorted(self._models)

    def entry(self, name: str) -> ModelEntry:
        """The entry of a known model; raises ModelNotFound."""
        entry = self._models.get(name)
        if entry is None:
            known = ", ".join(self.names()) or "none"
            raise ModelNotFound(f"unknown model {name!r}; models: {known}")
        return entry

    def get(self, name: str, version: str = "") -> LoadedVersion:
        """The version to serve for (name, version string); raises ModelNotFound or ModelNotReady."""
        entry = self.entry(name)
        if entry.unloaded:
            raise ModelNotReady(f"model {name!r} is unloaded; load it with RepositoryModelLoad")
        if not version:
            lv = entry.default()
            if lv is None:
                reasons = "; ".join(f"v{v}: {r}" for v, (_, r) in sorted(entry.failed.items())) or "no version loaded"
                raise ModelNotReady(f"model {name!r} is not ready: {reasons}")
            return lv
        try:
            v = int(version)
        except ValueError:
            raise ModelNotFound(f"unknown version {version!r} of model {name!r}; versions: {self._versions_text(entry)}") from None
        if v in entry.loaded:
            return entry.loaded[v]
        if v in entry.failed:
            raise ModelNotReady(f"model {name!r} version {v} is not ready: {entry.failed[v][1]}")
        raise ModelNotFound(f"unknown version {version!r} of model {name!r}; versions: {self._versions_text(entry)}")

    @staticmethod
    def _versions_text(entry: ModelEntry) -> str:
        return ", ".join(str(v) for v in sorted(entry.loaded)) or "none ready"

    def index(self) -> list[tuple[str, str, str, str]]:
        """(name, version, state, reason) of every version known, for RepositoryIndex."""
        rows = []
        for name in self.names():
            e = self._models[name]
            for v in sorted(set(e.loaded) | set(e.failed)):
                if e.unloaded:
                    rows.append((name, str(v), "UNAVAILABLE", "unloaded"))
                elif v in e.loaded:
                    rows.append((name, str(v), "READY", ""))
                else:
                    rows.append((name, str(v), "UNAVAILABLE", e.failed[v][1]))
        return rows

    # loading

    async def load_all(self) -> None:
        """Load every model of the repository; failures are recorded per version, the rest serve."""
        for name in repository.model_names(self.root):
            await self.load(name, retry_failed=True)

    async def load(self, name: str, *, retry_failed: bool = True) -> ModelEntry:
        """Load new or changed versions of `name`; a version takes over only after it passed its self-check."""
        lock = self._locks.setdefault(name, asyncio.Lock())
        async with lock:
            on_disk = repository.versions(self.root, name)
            if not on_disk and name not in self._models:
                raise ModelNotFound(f"no model {name!r} in repository {self.root}")
            entry = self._models.get(name) or ModelEntry(name)
            was_ready = entry.ready and name in self._models
            loaded = dict(entry.loaded)
            failed = {v: f for v, f in entry.failed.items() if v in on_disk}
            retired: list[LoadedVersion] = []
            for v in on_disk:
                sha = await asyncio.to_thread(self._recorded_sha, name, v)
                current = loaded.get(v)
                if current is not None and current.card.model_sha256 == sha:
                    continue  # unchanged
                if current is None and v in failed and failed[v][0] == sha and not retry_failed:
                    continue  # same bytes failed before: don't retry every poll
                try:
                    lv = await asyncio.to_thread(self._load_version, name, v)
                except GpuRequired:
                    raise
                except Exception as e:  # any reason a version can't serve: recorded, the others go on
                    log.error("model %s v%s not loaded: %s", name, v, e)
                    failed[v] = (sha, str(e))
                    continue
                failed.pop(v, None)
                if current is not None:
                    retired.append(current)
                loaded[v] = lv
                self.metrics.set_provider(name, v, lv.provider)
                log.info("model %s v%s ready on %s", name, v, lv.provider)
            for v in [v for v in loaded if v not in on_disk]:  # version folder deleted
                retired.append(loaded.pop(v))
            # The swap is one assignment in the loop: a request sees either the old set or the new.
            entry.loaded, entry.failed, entry.unloaded = loaded, failed, False
            self._models[name] = entry
            for lv in retired:
                self._retire(lv)
            if entry.ready != was_ready or not was_ready:
                self._notify(name, entry.ready)
            return entry

    def _recorded_sha(self, name: str, version: int) -> str | None:
        try:
            return repository.read_card(self.root, name, version).model_sha256
        except ValueError:
            return None

    def _load_version(self, name: str, version: int) -> LoadedVersion:
        card = repository.read_card(self.root, name, version)
        if card.name != name or card.version != version:
            raise ValueError(f"metadata says {card.name} v{card.version}, folder is {name}/{version}")
        path = repository.verify_model_file(self.root, card)
        s = self.settings
        model = OnnxModel(str(path), card, intra_op_threads=s.intra_op_threads, require_gpu=s.require_gpu)
        model.selfcheck()
        batcher = Batcher(
            model.predict,
            max_batch_size=s.max_batch_size,
            max_queue_delay_us=s.max_queue_delay_us,
            max_queue_rows=s.queue_rows,
            on_batch=self.metrics.batch_hook(name, version),
            name=f"{name}-v{version}",
            # GPU calls wait on the device: keep them off the loop; CPU batches this small take microseconds.
            inline_elements=0 if model.on_gpu else s.inline_elements,
        )
        return LoadedVersion(card, model, batcher)

    def _retire(self, lv: LoadedVersion) -> None:
        """Close a replaced version after its queued requests finished (in-flight work completes on it)."""
        self.metrics.forget(lv.card.name, lv.version, lv.provider)
        task = asyncio.get_running_loop().create_task(lv.batcher.close(self.settings.grace_s))
        self._draining.add(task)
        task.add_done_callback(self._draining.discard)

    async def unload(self, name: str) -> None:
        """Stop serving `name`; queued requests still finish."""
        lock = self._locks.setdefault(name, asyncio.Lock())
        async with lock:
            entry = self.entry(name)
            retired = list(entry.loaded.values())
            entry.loaded, entry.unloaded = {}, True
            for lv in retired:
                self._retire(lv)
            self._notify(name, False)

    def _notify(self, name: str, ready: bool) -> None:
        if self._on_change is not None:
            self._on_change(name, ready)

    async def poll_forever(self, interval_s: float) -> None:
        """Rescan the repository every interval_s seconds and load what is new or changed."""
        while True:
            await asyncio.sleep(interval_s)
            for name in repository.model_names(self.root):
                entry = self._models.get(name)
                if entry is not None and entry.unloaded:
                    continue  # an explicit unload is not undone by polling
                try:
                    await self.load(name, retry_failed=False)
                except Exception:
                    log.exception("polling model %s failed", name)

    async def close(self) -> None:
        """Drain and stop every batcher."""
        for entry in self._models.values():
            for lv in entry.loaded.values():
                self._retire(lv)
        if self._draining:
            await asyncio.gather(*self._draining, return_exceptions=True)
