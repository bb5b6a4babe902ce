"""The house rules that a reader relies on, checked on the source: no import circles in the server, the transports
apart, the batcher transport-free, no torch in the server, and no module over 300 lines (generated stubs aside)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {"zoo.server": ROOT / "server", "zoo.client": ROOT / "client", "zoo": ROOT / "zoo"}
MAX_LINES = 300


def modules() -> dict[str, Path]:
    """Every module of the installed layout (zoo.server.* lives in server/, zoo.client.* in client/)."""
    out: dict[str, Path] = {}
    for package, folder in PACKAGES.items():
        for path in folder.rglob("*.py"):
            parts = path.relative_to(folder).with_suffix("").parts
            if package == "zoo" and parts[0] in ("server", "client"):
                continue
            name = ".".join((package, *parts)).removesuffix(".__init__")
            out[name] = path
    return out


def imports(path: Path) -> set[str]:
    """Every module a file imports, at its top or inside a function (a lazy import is still a dependency)."""
    found: set[str] = set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = {id(n) for s in ast.walk(tree) if isinstance(s, ast.If) and ast.unparse(s.test) == "TYPE_CHECKING" for n in ast.walk(s)}
    for node in ast.walk(tree):
        if id(node) in typing_only:  # annotations only: nothing is imported when the code runs
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return found


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {m: {i for i in imports(p) if i in mods and i != m} for m, p in mods.items()}


def test_the_server_has_no_import_circle():
    edges = {m: {d for d in deps if d.startswith("zoo.server")} for m, deps in graph().items() if m.startswith("zoo.server")}
    state: dict[str, int] = {}

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for d in sorted(edges.get(m, ())):
            if state.get(d) == 1:
                cycle = path[path.index(d):] + [d] if d in path else [m, d]
                raise AssertionError("import circle: " + " -> ".join(cycle))
            if d not in state:
                visit(d, [*path, d])
        state[m] = 2

    for m in sorted(edges):
        if m not in state:
            visit(m, [m])


def test_layers_import_only_downwards():
    g = {m: {d for d in ds} for m, ds in graph().items()}
    all_imports = {m: imports(p) for m, p in modules().items()}
    for m, deps in g.items():
        if m.startswith("zoo.server"):
            assert not any(i == "torch" or i.startswith(("torch.", "zoo.training")) for i in all_imports[m]), m
        if m.startswith("zoo.server.http_api"):
            assert not any(d.startswith("zoo.server.grpc_api") for d in deps), m
        if m.startswith("zoo.server.grpc_api"):
            assert not any(d.startswith(("zoo.server.http_api", "zoo.server.browser")) for d in deps), m
        if m == "zoo.server.batcher":
            assert not any(i.startswith(("grpc", "aiohttp", "onnxruntime", "zoo.server.grpc_api", "zoo.server.http_api")) for i in all_imports[m])
        if m.startswith("zoo.client"):
            assert not any(d.startswith("zoo.server") for d in deps), m
        if m.startswith("zoo.core"):
            assert not any(d.startswith(("zoo.server", "zoo.client", "zoo.training", "zoo.cli")) for d in deps), m


def test_no_module_is_over_300_lines():
    long = {str(p.relative_to(ROOT)): n for p in modules().values() if "proto" not in p.parts and (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"split these (one responsibility each): {long}"
