"""Regenerate the committed gRPC stubs in zoo/proto/ from protos/zoo/proto/*.proto."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

PROTOS = Path(__file__).resolve().parent
ROOT = PROTOS.parent


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
    return sorted((out / "zoo" / "proto").glob("*_pb2*.py*"))


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
