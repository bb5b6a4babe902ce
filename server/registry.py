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
from dataclasses import dataclass, field

from zoo.core import repository
from zoo.core.contract import ModelCard
from zoo.core.repository import shown
from zoo.server.batcher import Batcher
from zoo.server.errors import ControlDisabled, InvalidInput, ModelNotFound, ModelNotReady
from zoo.server.loader import Loader
from zoo.server.metrics import Metrics
from zoo.server.model_files import RepositoryFiles, Signature
from zoo.server.runtime import GpuRequired, OnnxModel
from zoo.server.settings import ServerSettings

log = logging.getLogger(__name__)

INLINE_BUDGET_S = 100e-6  # a batch may hold the event loop this long (about a third of one request's gRPC cost)
LOADER_THREADS = 4
SCAN_TIMEOUT_S = 10.0  # listing a folder or stat-ing a version's files


@dataclass
class LoadedVersion:
    """One version ready to serve: its card, its session and its batcher."""

    card: ModelCard
    model: OnnxModel
    batcher: Batcher
    signature: Signature
    loaded_at: float = field(default_factory=time.time)
    files_changed: str = ""  # why the files on disk no longer match what serves (shown in RepositoryIndex)

    @property
    def version(self) -> int:
        """The version number."""
        return self.card.version

    @property
    def provider(self) -> str:
        """The execution provider really running it."""
        return self.model.provider


@dataclass
class Failure:
    """A version that could not load, and the files it was tried with (retried only when they change)."""

    signature: Signature | None
    reason: str


@dataclass
class ModelEntry:
    """Everything known about one model name."""

    name: str
    loaded: dict[int, LoadedVersion] = field(default_factory=dict)
    failed: dict[int, Failure] = field(default_factory=dict)
    unloaded: bool = False  # explicitly unloaded (explicit mode)
    error: str = ""  # why the model's folder itself could not be read (its versions keep their last state)

    def default(self) -> LoadedVersion | None:
        """The version served when none is named: the highest one that loaded and passed its self-check."""
        return self.loaded[max(self.loaded)] if self.loaded and not self.unloaded else None

    @property
    def ready(self) -> bool:
        """Whether a request without a version would be served."""
        return self.default() is not None


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
                await self._scan()
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
            self._on_disk = set(await self.loader.run("listing the repository", self.files.model_names, timeout_s=SCAN_TIMEOUT_S))
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
        names = await self._scan()
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

    async def _scan(self) -> list[str]:
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
            results = await asyncio.gather(*(self._sync_version(name, v, loaded.get(v), failed.get(v), retry_failed) for v in on_disk))
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

    async def _sync_version(
        self, name: str, v: int, current: LoadedVersion | None, failure: Failure | None, retry_failed: bool
    ) -> tuple[LoadedVersion | None, Failure | None]:
        """(the version to serve, or its failure) after comparing its files with what serves or failed."""
        try:
            signature = await self.loader.run(f"checking {name} v{v}", self.files.signature, name, v, timeout_s=SCAN_TIMEOUT_S)
        except Exception as e:
            return current, (None if current else Failure(None, str(e)))
        if current is not None and current.signature == signature:
            return current, None
        if current is None and failure is not None and failure.signature == signature and not retry_failed:
            return None, failure  # the same files failed before: don't retry every poll
        try:
            files = await self.loader.run(f"reading {name} v{v}", self.files.read_version, name, v)
            if current is not None and files.card.model_sha256 == current.card.model_sha256:
                current.signature, current.files_changed = signature, ""  # rewritten with the same bytes
                return current, None
            lv = await self.loader.run(f"loading {name} v{v}", self._open, files)
        except GpuRequired:
            raise
        except Exception as e:  # any reason a version can't serve: recorded, the others go on
            if current is not None:  # what serves keeps serving; the index says why the disk disagrees
                current.files_changed = f"files changed on disk since loading, and the new ones do not load ({e}); serving the loaded copy"
                current.signature = signature
                log.error("model %s v%s: %s", name, v, current.files_changed)
                return current, None
            log.error("model %s v%s not loaded: %s", name, v, e)
            return None, Failure(signature, str(e))
        self.metrics.set_provider(name, v, lv.provider)
        log.info("model %s v%s ready on %s", name, v, lv.provider)
        return lv, None

    def _open(self, files) -> LoadedVersion:
        """A session from verified bytes, self-checked, with its batcher (runs in a loader thread)."""
        s, card = self.settings, files.card
        model = OnnxModel(files.model, card, intra_op_threads=s.intra_op_threads, require_gpu=s.require_gpu)
        model.selfcheck()
        # GPU calls wait on the device, and a costly model would stall every connection: only a batch the model
        # answers within the budget (measured now, on the self-check rows) runs on the event loop.
        inline_rows = 0 if model.on_gpu else model.rows_within(INLINE_BUDGET_S, s.max_batch_size)
        batcher = Batcher(
            model.predict,
            max_batch_size=s.max_batch_size,
            max_queue_delay_us=s.max_queue_delay_us,
            max_queue_rows=s.queue_rows,
            inline_rows=inline_rows,
            on_batch=self.metrics.batch_hook(card.name, card.version),
            name=f"{card.name}-v{card.version}",
        )
        return LoadedVersion(card, model, batcher, files.signature)

    def _retire(self, lv: LoadedVersion) -> None:
        """Close a replaced version after its queued requests finished (in-flight work completes on it)."""
        self.metrics.forget(lv.card.name, lv.version, lv.provider)
        task = asyncio.get_running_loop().create_task(lv.batcher.close(self.settings.grace))
        self._draining.add(task)
        task.add_done_callback(self._draining.discard)

    def _notify(self, name: str, ready: bool) -> None:
        if self._on_change is not None:
            self._on_change(name, ready)

    async def _names_to_poll(self) -> list[str] | None:
        """Model folders on disk plus the models known (a vanished folder must be seen to be unloaded)."""
        try:
            names = set(await self._scan())
        except Exception as e:
            log.error("polling the repository failed: %s", e)
            return None
        return sorted(names | set(self._models))

    async def poll_once(self) -> None:
        """One scan, every model synced concurrently; returns when all are done."""
        names = await self._names_to_poll()
        if names is not None:
            await asyncio.gather(*(self._poll_model(n) for n in names))

    async def _poll_model(self, name: str) -> None:
        try:
            await self.sync(name)
        except Exception as e:
            log.error("polling model %s failed: %s", name, e)

    async def poll_forever(self, interval_s: float) -> None:
        """Rescan every interval_s seconds; a model still syncing from an earlier scan (a slow or hung read) is
        skipped, so it never delays the others."""
        syncing: dict[str, asyncio.Task] = {}
        try:
            while True:
                await asyncio.sleep(interval_s)
                for name in await self._names_to_poll() or []:
                    task = syncing.get(name)
                    if task is None or task.done():
                        syncing[name] = asyncio.get_running_loop().create_task(self._poll_model(name))
        finally:
            for task in syncing.values():
                task.cancel()

    async def close(self) -> None:
        """Drain and stop every batcher."""
        for entry in self._models.values():
            for lv in entry.loaded.values():
                self._retire(lv)
        if self._draining:
            await asyncio.gather(*self._draining, return_exceptions=True)
