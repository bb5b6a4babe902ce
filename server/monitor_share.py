"""Monitoring under --workers: each worker writes its drift counts beside its statistics snapshot, and the figures
add up: a worker's page shows every worker's rows, and the supervisor's /metrics serves the sums.

PSI is not additive, so what is shared is the counts (zoo.server.drift.DriftCounts), and PSI is computed from their
sum. The supervisor never loads models: it reads each version's card (and so its training reference) from the
repository, once per change of its metadata.json.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from zoo.core import reference, repository
from zoo.core.contract import ModelCard
from zoo.server.drift import DriftCounts, counts_from_json, counts_to_json

PREFIX = "drift-"
KEY_SEP = "\x1f"


def write(folder: str | os.PathLike, counts: dict[tuple[str, int], DriftCounts]) -> None:
    """This process's counts for the others to add (atomically: a reader never sees half a file)."""
    path = Path(folder) / f"{PREFIX}{os.getpid()}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({f"{n}{KEY_SEP}{v}": counts_to_json(c) for (n, v), c in counts.items()}), encoding="utf-8")
    os.replace(tmp, path)


def read_all(folder: str | os.PathLike, skip_own: bool) -> dict[tuple[str, int], list[DriftCounts]]:
    """Every worker's latest counts by version (this process's file left out when skip_own)."""
    out: dict[tuple[str, int], list[DriftCounts]] = {}
    mine = f"{PREFIX}{os.getpid()}.json"
    for path in Path(folder).glob(f"{PREFIX}*.json"):
        if skip_own and path.name == mine:
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # a worker that died mid-rename leaves nothing half-written; an unreadable file is skipped
        for key, raw in data.items():
            name, _, version = key.partition(KEY_SEP)
            try:
                out.setdefault((name, int(version)), []).append(counts_from_json(raw))
            except (KeyError, TypeError, ValueError):
                continue
    return out


def added(mine: DriftCounts, others: list[DriftCounts]) -> DriftCounts:
    """mine plus the other workers' counts of the same version (one of another shape, a card edited in place and not
    yet reloaded everywhere, is left out rather than mixed in)."""
    total = mine
    for other in others:
        if other.labels.shape == mine.labels.shape and _same_shape(other.bin_counts, mine.bin_counts):
            total = total + other
    return total


def _same_shape(a, b) -> bool:
    return (a is None) == (b is None) and (a is None or a.shape == b.shape)


class SupervisorSource:
    """The supervisor's view for its /metrics: every version's counts summed over the workers, with its card."""

    def __init__(self, folder: str | os.PathLike, repository_root: str | Path):
        self.folder, self.root = folder, repository_root
        self._cards: dict[tuple[str, int], tuple[float, ModelCard, reference.Reference | None]] = {}

    def __call__(self) -> list[tuple[ModelCard, reference.Reference | None, DriftCounts]]:
        out = []
        for (name, version), parts in sorted(read_all(self.folder, skip_own=False).items()):
            known = self._card(name, version)
            if known is None or not parts:
                continue
            card, ref = known
            out.append((card, ref, added(parts[0], parts[1:])))
        return out

    def _card(self, name: str, version: int) -> tuple[ModelCard, reference.Reference | None] | None:
        try:
            path = repository.version_dir(self.root, name, version) / repository.METADATA_FILE
            mtime = path.stat().st_mtime
            cached = self._cards.get((name, version))
            if cached is None or cached[0] != mtime:
                card = repository.read_card(self.root, name, version)
                cached = (mtime, card, reference.parse(card.extra, card.num_features, card.num_classes))
                self._cards[(name, version)] = cached
            return cached[1], cached[2]
        except (OSError, ValueError):
            return None  # deleted or unreadable: its series go until it serves again
