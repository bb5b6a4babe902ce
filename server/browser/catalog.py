"""What the model browser shows of each model version: state, card and serving statistics (transport-neutral, no HTML)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from zoo.core import repository
from zoo.core.contract import ModelCard
from zoo.server.errors import ModelNotFound, ModelNotReady
from zoo.server.metrics import VersionStats
from zoo.server.registry import LoadedVersion, Registry

READY = "READY"


@dataclass(frozen=True)
class Serving:
    """A version's serving statistics since it loaded, from the server's own counters (every worker's under --workers)."""

    requests: int  # inference requests answered, successes and failures
    failures: int
    rows: int  # rows answered successfully
    batches: int  # model calls
    mean_batch_rows: float | None  # None: no batch yet
    mean_latency_ms: float | None  # of successful requests, as the server measures them (queue + model + encoding)
    mean_queue_ms: float | None
    mean_compute_ms: float | None  # model time per request (a batch's time counts once for each request in it)
    last_inference_ms: int  # Unix time in ms of the last success; 0: never


@dataclass(frozen=True)
class VersionInfo:
    """One row of the repository index, with what the server knows of the version when it serves."""

    name: str
    version: str  # '' for a row about the whole model (not loaded, folder unreadable)
    state: str  # READY or UNAVAILABLE
    reason: str  # why it is not ready (or why its files on disk differ from what serves)
    card: ModelCard | None = None  # serving versions only: a version that failed to load has no trusted card
    provider: str = ""
    serving: Serving | None = None
    default: bool = False  # the version a request that names none gets

    @property
    def figures(self) -> list[str]:
        """The figures (repository.FIGURES) this version's card records, in FIGURES order."""
        recorded = repository.figures(self.card.extra) if self.card else {}
        return [f for f in repository.FIGURES if f in recorded]


def serving(s: VersionStats) -> Serving:
    """The browser's serving statistics from one version's ModelStatistics counters."""
    batches = sum(count for count, _ns in s.batch_sizes.values())
    batch_rows = sum(rows * count for rows, (count, _ns) in s.batch_sizes.items())
    return Serving(
        requests=s.success_count + s.fail_count,
        failures=s.fail_count,
        rows=s.inference_count,
        batches=batches,
        mean_batch_rows=batch_rows / batches if batches else None,
        mean_latency_ms=_mean_ms(s.success_ns, s.success_count),
        mean_queue_ms=_mean_ms(s.queue_ns, s.queue_count),
        mean_compute_ms=_mean_ms(s.compute_ns, s.compute_count),
        last_inference_ms=s.last_inference_ms,
    )


def describe(rows: Iterable[tuple[str, str, str, str]], registry: Registry, stats: Callable[[str, int], VersionStats]) -> list[VersionInfo]:
    """VersionInfo of each (name, version, state, reason) index row; `stats` gives a loaded version's counters."""
    out = []
    for name, version, state, reason in rows:
        lv, default = _serving(registry, name, version) if state == READY else (None, False)
        if lv is None:  # not ready, or it went away while the index was read (the next page view shows it)
            out.append(VersionInfo(name, version, state, reason))
            continue
        out.append(VersionInfo(name, version, state, reason, lv.card, lv.provider, serving(stats(name, lv.version)), default))
    return out


def _serving(registry: Registry, name: str, version: str) -> tuple[LoadedVersion | None, bool]:
    """The loaded version of an index row, and whether it is the model's default; (None, False) if gone."""
    try:
        lv = registry.get(name, version)
        return lv, lv is registry.get(name)
    except (ModelNotFound, ModelNotReady):
        return None, False


def _mean_ms(ns: int, count: int) -> float | None:
    return ns / count / 1e6 if count else None
