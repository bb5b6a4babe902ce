"""What the registry holds of each model: the versions that serve, those that failed, and how a version is opened."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from zoo.core import decision
from zoo.core.contract import LABEL, ONE_HOT, PROBABILITIES, ModelCard
from zoo.server.batcher import Batcher
from zoo.server.metrics import Metrics
from zoo.server.model_files import Signature, VersionFiles
from zoo.server.runtime import GpuRequired, OnnxModel
from zoo.server.settings import ServerSettings

if TYPE_CHECKING:
    from zoo.server.registry import Registry

log = logging.getLogger(__name__)

SCAN_TIMEOUT_S = 10.0  # listing a folder or stat-ing a version's files
INLINE_BUDGET_S = 100e-6  # a batch may hold the event loop this long (about a third of one request's gRPC cost)


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

    def same_files(self, files: VersionFiles) -> bool:
        """Whether `files` say exactly what serves: the same card (every key of metadata.json) and the same model bytes."""
        return files.card == self.card


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


def graph_threshold(model: OnnxModel) -> float | list[float] | None:
    """The threshold the graph's one_hot and label were exported with (its metadata_props): a number, one per class
    (multilabel), or None if it does not say."""
    raw = model.session.get_modelmeta().custom_metadata_map.get("default_threshold")
    try:
        value = json.loads(raw) if raw is not None else None
        return [float(v) for v in value] if isinstance(value, list) else float(value) if value is not None else None
    except (ValueError, TypeError):
        return None


def decided_by_card(model: OnnxModel):
    """model.predict, with one_hot and label decided at the card's threshold when metadata.json names another than
    the graph was exported with (an edited card): what serves is what the card says."""
    card, baked = model.card, graph_threshold(model)
    if baked is None or baked == card.default_threshold:
        return model.predict

    def predict(x: np.ndarray) -> dict[str, np.ndarray]:
        out = model.predict(x)
        p, t = out[PROBABILITIES], card.default_threshold
        return {**out, ONE_HOT: decision.one_hot(p, card.task, t), LABEL: decision.labels(p, card.task, t)}

    return predict


def open_version(files: VersionFiles, settings: ServerSettings, metrics: Metrics) -> LoadedVersion:
    """A session from verified bytes, self-checked, with its batcher (blocking: runs in a loader thread)."""
    s, card = settings, files.card
    model = OnnxModel(files.model, card, intra_op_threads=s.intra_op_threads, require_gpu=s.require_gpu)
    model.selfcheck()
    # GPU calls wait on the device, and a costly model would stall every connection: only a batch the model
    # answers within the budget (measured now, on the self-check rows) runs on the event loop.
    inline_rows = 0 if model.on_gpu else model.rows_within(INLINE_BUDGET_S, s.max_batch_size)
    batcher = Batcher(
        decided_by_card(model),
        max_batch_size=s.max_batch_size,
        max_queue_delay_us=s.max_queue_delay_us,
        max_queue_rows=s.queue_rows,
        inline_rows=inline_rows,
        on_batch=metrics.batch_hook(card.name, card.version),
        name=f"{card.name}-v{card.version}",
    )
    return LoadedVersion(card, model, batcher, files.signature)


async def refresh(
    registry: Registry, name: str, v: int, current: LoadedVersion | None, failure: Failure | None, retry_failed: bool
) -> tuple[LoadedVersion | None, Failure | None]:
    """Version v of `name` after comparing its files with what serves or failed: (the version to serve, or its failure)."""
    try:
        signature = await registry.loader.run(f"checking {name} v{v}", registry.files.signature, name, v, timeout_s=SCAN_TIMEOUT_S)
    except Exception as e:
        return current, (None if current else Failure(None, str(e)))
    if current is not None and current.signature == signature:
        return current, None
    if current is None and failure is not None and failure.signature == signature and not retry_failed:
        return None, failure  # the same files failed before: don't retry every poll
    try:
        files = await registry.loader.run(f"reading {name} v{v}", registry.files.read_version, name, v)
        if current is not None and current.same_files(files):
            current.signature, current.files_changed = signature, ""  # rewritten with the same content
            return current, None
        lv = await registry.loader.run(f"loading {name} v{v}", open_version, files, registry.settings, registry.metrics)
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
    registry.metrics.set_provider(name, v, lv.provider)
    log.info("model %s v%s ready on %s", name, v, lv.provider)
    return lv, None
