"""Regenerate the committed gRPC stubs in zoo/proto/ from protos/zoo/proto/*.proto.

The messages keep the protocol's package `inference` (the wire names are the protocol), but their descriptors are
registered in zoo's own descriptor pool (zoo/proto/_pool.py) instead of protobuf's process-wide default pool, where
tritonclient's and KServe's copies of the same package live: that way `import tritonclient.grpc` and
`import zoo.client` work in one process, in either order.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

PROTOS = Path(__file__).resolve().parent
ROOT = PROTOS.parent
DEFAULT_POOL = "_descriptor_pool.Default()"
PRIVATE_POOL_IMPORT = "from zoo.proto._pool import POOL as _ZOO_POOL\n"


def use_private_pool(source: str) -> str:
    """Rewrite one generated *_pb2.py to add its descriptors to zoo's pool; raises if protoc's output changed shape."""
    if source.count(DEFAULT_POOL) != 1:
        raise RuntimeError(f"expected one {DEFAULT_POOL} in the generated code; the generator needs updating")
    source = source.replace(DEFAULT_POOL, "_ZOO_POOL")
    # The import goes right after protoc's own imports, before the descriptors are built.
    anchor = "# @@protoc_insertion_point(imports)\n"
    if anchor not in source:
        raise RuntimeError("protoc's imports insertion point is missing; the generator needs updating")
    return source.replace(anchor, anchor + PRIVATE_POOL_IMPORT, 1)


def generate(out_dir: str | Path = ROOT) -> list[Path]:
    """Run protoc on every .proto under protos/; returns the generated files (under out_dir/zoo/proto)."""
    from grpc_tools import protoc  # dev-only dependency: imported here so the module imports without it

    import grpc_tools

    out = Path(out_dir)
    sources = sorted(str(p.relative_to(PROTOS)) for p in (PROTOS / "zoo" / "proto").glob("*.proto"))
    # The well-known types ship inside grpc_tools; the include path lets imports of them resolve.
    include = str(Path(grpc_tools.__file__).parent / "_proto")
    args = ["protoc", f"-I{PROTOS}", f"-I{include}", f"--python_out={out}", f"--grpc_python_out={out}", f"--pyi_out={out}", *sources]
    # protoc resolves sources relative to the -I root, so run it as if from protos/.
    rc = protoc.main([a if not a.endswith(".proto") else str(PROTOS / a) for a in args])
    if rc != 0:
        raise RuntimeError(f"protoc failed with exit code {rc}")
    generated = sorted((out / "zoo" / "proto").glob("*_pb2*.py*"))
    for path in generated:
        if re.fullmatch(r".*_pb2\.py", path.name):
            path.write_text(use_private_pool(path.read_text(encoding="utf-8")), encoding="utf-8")
    return generated


def main(argv: list[str] | None = None) -> int:
    """Command line: `python protos/generate.py [--out DIR]`."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default=str(ROOT), help="root to write zoo/proto/*_pb2*.py into (default: the repository)")
    args = parser.parse_args(argv)
    for path in generate(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
