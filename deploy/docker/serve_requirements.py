"""Print the requirements of a wheel's base install plus one extra, one per line, swapping the onnxruntime package.

Used by the Dockerfile: `python3 serve_requirements.py dist/zoo-*.whl serve onnxruntime > requirements.txt`.
pyproject.toml stays the one source of truth for the serving dependencies; only the onnxruntime
flavour (onnxruntime-gpu or the CPU-only onnxruntime, same API) is chosen at image build time.
"""

from __future__ import annotations

import re
import sys
import zipfile
from email.parser import Parser

ORT_PACKAGES = ("onnxruntime-gpu", "onnxruntime")
NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def requirements(wheel: str, extra: str, ort: str) -> list[str]:
    """Requires-Dist entries with no marker or `extra == "<extra>"`, markers removed, onnxruntime-* -> ort."""
    with zipfile.ZipFile(wheel) as zf:
        meta = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        msg = Parser().parsestr(zf.read(meta).decode("utf-8"))
    out: list[str] = []
    for entry in msg.get_all("Requires-Dist") or []:
        spec, _, marker = entry.partition(";")
        marker = marker.strip().replace("'", '"')
        if marker and marker != f'extra == "{extra}"':
            continue
        spec = spec.strip()
        name = NAME.match(spec).group(1).lower().replace("_", "-")
        if name in ORT_PACKAGES:
            spec = ort + spec[len(name):]
        out.append(spec)
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        print(f"usage: {argv[0]} WHEEL EXTRA ORT_PACKAGE", file=sys.stderr)
        return 2
    _, wheel, extra, ort = argv
    if ort not in ORT_PACKAGES:
        print(f"ORT must be one of {ORT_PACKAGES}, got {ort!r}", file=sys.stderr)
        return 2
    print("\n".join(requirements(wheel, extra, ort)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
