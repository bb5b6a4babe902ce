"""What is measured: the case families (B S M U L W F H N), each a list of specs, and the targets they compare."""

from __future__ import annotations

from dataclasses import dataclass

FAMILIES = "BSMULWFHN"
WIDE = "mnist-wide"  # mnist with --hidden 2048,2048,2048: the model of goal W
# Target name -> its label in the tables. Every zoo runs --max-batch-size 1024 --intra-op-threads 1 and the default queue
# delay (0) unless its name says otherwise; "ort" is in-process onnxruntime (no server).
LABEL = {"zoo": "zoo", "zoo-w2": "zoo --workers 2", "zoo-w3": "zoo --workers 3", "zoo-mb1": "zoo, batching off",
         "before": "zoo before (a6a32c3)", "floor": "grpc.aio floor", "triton": "Triton", "ort": "onnxruntime in-process"}


@dataclass(frozen=True)
class Spec:
    """One load (tool, path, model, rows per request, concurrency) run against each of its targets in every round."""

    tool: str  # "grpc": our load generator (unary); "pa": perf_analyzer; "ort" targets run _ort_limit.py instead
    path: str  # perf_analyzer path (grpc, stream, shm, http-json, http-binary); "grpc" for our generator
    model: str
    rows: int
    concurrency: int
    targets: tuple[str, ...]

    @property
    def key(self) -> str:
        return f"{self.tool}:{self.path}:{self.model}:{self.rows}x{self.concurrency}"


def family(name: str) -> list[Spec]:
    """The specs one family needs (mnist unless stated)."""
    if name == "B":  # batcher before/after: 1-row unary, our generator
        return [Spec("grpc", "grpc", m, 1, c, ("zoo", "before", "triton")) for m in ("iris", "mnist") for c in (1, 4, 16)]
    if name == "S":
        return [Spec("pa", "stream", "mnist", 1, 16, ("zoo", "triton"))]
    if name == "M":
        return [Spec("pa", "shm", "mnist", 1024, 4, ("zoo", "triton", "ort"))]
    if name == "U":
        return [Spec("pa", "grpc", "mnist", 1, 16, ("zoo", "zoo-w2", "zoo-w3", "triton"))]
    if name == "L":
        return [Spec("pa", p, "mnist", 1, 1, ("zoo", "triton")) for p in ("grpc", "stream", "shm", "http-json", "http-binary")]
    if name == "W":
        return [Spec("grpc", "grpc", WIDE, 1, 16, ("zoo", "zoo-mb1"))]
    if name == "F":
        return [Spec("grpc", "grpc", "mnist", 1, 16, ("zoo", "floor", "triton"))]
    if name == "H":
        return [Spec("pa", f"http-{f}", "mnist", 1, c, ("zoo", "triton")) for f in ("json", "binary") for c in (1, 16)]
    if name == "N":
        return []  # GPU scaling and routing: needs a lent GPU machine
    raise ValueError(f"unknown case family {name!r}: choose from {', '.join(FAMILIES)}")


def plan(families: str, skip_triton: bool = False) -> list[Spec]:
    """The specs of the chosen families, merged: one load shared by two families is run once, on the union of targets."""
    merged: dict[str, Spec] = {}
    for f in families:
        for s in family(f):
            targets = tuple(t for t in s.targets if not (skip_triton and t == "triton"))
            old = merged.get(s.key)
            if old is not None:
                targets = old.targets + tuple(t for t in targets if t not in old.targets)
            merged[s.key] = Spec(s.tool, s.path, s.model, s.rows, s.concurrency, targets)
    return list(merged.values())


def models(specs: list[Spec]) -> list[str]:
    """Models the specs use, in first-use order."""
    return list(dict.fromkeys(s.model for s in specs))


def rotated(targets: tuple[str, ...], round_index: int) -> list[str]:
    """Round r starts with the r-th target, so who goes first (and drift) is spread over the targets."""
    k = round_index % len(targets) if targets else 0
    return list(targets[k:] + targets[:k])
