"""Print a project's base requirements plus one extra, one per line, swapping the onnxruntime package.

Used by the Dockerfile: `python serve_requirements.py pyproject.toml serve onnxruntime > requirements.txt`.
pyproject.toml stays the one source of truth for the serving dependencies; only the onnxruntime
flavour (onnxruntime-gpu or the CPU-only onnxruntime, same API) is chosen at image build time.

Environment markers (`uvloop>=0.19; sys_platform != "win32"`) are passed through untouched: pip
evaluates them when it installs into the image, against the image's own interpreter. Evaluating them
here would use whatever Python runs this script (a Mac, a Windows laptop, a CI host) or a guessed
target, and the image's Python varies with BASE (3.11 on python:3.11-slim, 3.12 on Ubuntu 24.04).
The requirements are read from pyproject.toml rather than the wheel's METADATA because there each
entry still has only its own marker; METADATA folds in `and extra == "serve"`, which pip evaluates
as false in a requirements file.
"""

from __future__ import annotations

import sys
import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ORT_PACKAGES = ("onnxruntime-gpu", "onnxruntime")


def load_project(pyproject: str) -> dict:
    """The [project] table of a pyproject.toml whose dependencies are static."""
    with open(pyproject, "rb") as f:
        project = tomllib.load(f)["project"]
    dynamic = {"dependencies", "optional-dependencies"} & set(project.get("dynamic", []))
    if dynamic:
        # dynamic lists exist only once the backend runs; reading them here would silently drop them
        raise ValueError(f"{pyproject}: dynamic {', '.join(sorted(dynamic))} cannot be read statically")
    return project


def expand(project: dict, extras: list[str], seen: set[str]) -> list[Requirement]:
    """The base dependencies plus those of extras, with self-references (zoo[client]) resolved."""
    name = canonicalize_name(project["name"])
    groups = project.get("optional-dependencies", {})
    out = [Requirement(spec) for spec in project.get("dependencies", [])]
    for extra in extras:
        if extra in seen:
            continue
        seen.add(extra)
        if extra not in groups:
            raise ValueError(f"extra {extra!r} is not in [project.optional-dependencies]")
        for req in map(Requirement, groups[extra]):
            if canonicalize_name(req.name) != name:
                out.append(req)
            elif req.marker is not None:
                raise ValueError(f"{req}: a marker on a self-reference is not supported")
            else:
                # pip would fetch the project itself from the index; its requirements are what is meant
                out += expand(project, sorted(req.extras), seen)
    return out


def requirements(pyproject: str, extra: str, ort: str) -> list[str]:
    """Base + extra requirements with their markers kept, onnxruntime-* renamed to ort, duplicates dropped."""
    out: list[str] = []
    for req in expand(load_project(pyproject), [extra], set()):
        if canonicalize_name(req.name) in ORT_PACKAGES:
            req.name = ort
        if str(req) not in out:
            out.append(str(req))
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        print(f"usage: {argv[0]} PYPROJECT EXTRA ORT_PACKAGE", file=sys.stderr)
        return 2
    _, pyproject, extra, ort = argv
    if ort not in ORT_PACKAGES:
        print(f"ORT must be one of {ORT_PACKAGES}, got {ort!r}", file=sys.stderr)
        return 2
    try:
        print("\n".join(requirements(pyproject, extra, ort)))
    except ValueError as e:
        print(f"serve_requirements.py: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
