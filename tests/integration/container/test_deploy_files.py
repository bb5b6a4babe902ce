"""Fast checks of the deployment files: the manifests parse and agree with the image, the Dockerfile keeps its promises."""

from __future__ import annotations

import importlib.util
import json
import re
import struct
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from tests.conftest import in_ci

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"
# The marker environment of the image's interpreter (python:3.11-slim-bookworm): Linux, CPython 3.11.
IMAGE_ENV = {**default_environment(), "os_name": "posix", "sys_platform": "linux", "platform_system": "Linux",
             "platform_machine": "x86_64", "implementation_name": "cpython", "platform_python_implementation": "CPython",
             "python_version": "3.11", "python_full_version": "3.11.2"}


@pytest.fixture(scope="module")
def yaml():
    try:
        import yaml
    except ImportError:
        if in_ci():
            pytest.fail("PyYAML is missing: it belongs in the dev extra")
        pytest.skip("PyYAML is not installed (pip install pyyaml)")
    return yaml


@pytest.fixture(scope="module")
def docs(yaml) -> dict[tuple[str, str], dict]:
    """Every YAML document under deploy/, by (kind, name)."""
    out = {}
    for path in sorted(DEPLOY.rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            assert isinstance(doc, dict) and {"apiVersion", "kind", "metadata"} <= doc.keys(), path
            out[(doc["kind"], doc["metadata"]["name"])] = doc
    return out


def test_every_manifest_parses_and_the_expected_objects_exist(docs):
    assert {("PersistentVolumeClaim", "zoo-models"), ("Deployment", "zoo-server"), ("Service", "zoo-server"),
            ("ServingRuntime", "zoo-runtime"), ("InferenceService", "zoo")} <= docs.keys()


def test_deployment_probes_the_grpc_health_service_and_mounts_models(docs):
    pod = docs[("Deployment", "zoo-server")]["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert c[probe]["grpc"]["port"] == 8001, probe
    assert {p["containerPort"] for p in c["ports"]} == {8000, 8001, 8002}
    env = {e["name"]: e["value"] for e in c["env"]}
    assert env["ZOO_REPOSITORY"] == "/models" and env["ZOO_PORT"] == "8001"
    assert {"name": "models", "mountPath": "/models", "readOnly": True} in c["volumeMounts"]
    claims = [v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"] if "persistentVolumeClaim" in v]
    assert claims == ["zoo-models"]
    assert pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["runAsUser"] == 10001
    assert "requests" in c["resources"] and "limits" in c["resources"]
    assert pod["terminationGracePeriodSeconds"] > 10  # longer than the server's default drain


def test_service_exposes_http_grpc_and_metrics_with_scrape_annotations(docs):
    svc = docs[("Service", "zoo-server")]
    assert {p["port"] for p in svc["spec"]["ports"]} == {8000, 8001, 8002}
    ann = svc["metadata"]["annotations"]
    assert ann["prometheus.io/scrape"] == "true" and ann["prometheus.io/port"] == "8002"
    deployment = docs[("Deployment", "zoo-server")]
    assert svc["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()


def test_kserve_runtime_speaks_v2_grpc_and_the_inference_service_uses_it(docs):
    rt = docs[("ServingRuntime", "zoo-runtime")]["spec"]
    isvc = docs[("InferenceService", "zoo")]["spec"]["predictor"]["model"]
    assert "grpc-v2" in rt["protocolVersions"] and isvc["protocolVersion"] == "grpc-v2"
    assert isvc["runtime"] == "zoo-runtime"
    assert isvc["modelFormat"]["name"] in {f["name"] for f in rt["supportedModelFormats"]}
    assert rt["containers"][0]["args"] == ["--repository", "/mnt/models"]  # where KServe puts storageUri


def test_dockerfile_builds_a_serving_only_non_root_image():
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    assert "ARG BASE=python:3.11-slim-bookworm" in lines
    assert "ARG ORT=onnxruntime" in lines  # the default is the CPU image; onnxruntime-gpu needs a CUDA base
    assert 'ENTRYPOINT ["/opt/venv/bin/zoo-server"]' in lines
    assert "USER 10001:10001" in lines and "EXPOSE 8000 8001 8002" in lines
    assert any(ln.startswith("HEALTHCHECK") for ln in lines)
    code = "\n".join(lines).lower()
    assert "torch" not in code and "[train]" not in code and "zoo serve" not in code  # the image never trains


def test_the_gpu_image_is_an_explicit_choice_on_the_cuda_base():
    out = subprocess.run(
        ["bash", "-c", 'docker() { echo "$@"; }; export -f docker; ENGINE=docker GPU=1 "$0"', str(DEPLOY / "build-image.sh")],
        capture_output=True, text=True, check=True,
    )
    assert "--build-arg ORT=onnxruntime-gpu" in out.stdout and "--build-arg BASE=nvidia/cuda:" in out.stdout, out.stdout
    assert "--tag zoo-server:gpu" in out.stdout
    plain = subprocess.run(
        ["bash", "-c", 'docker() { echo "$@"; }; export -f docker; ENGINE=docker "$0"', str(DEPLOY / "build-image.sh")],
        capture_output=True, text=True, check=True,
    )
    assert "ORT=" not in plain.stdout and "BASE=" not in plain.stdout and "--tag zoo-server:latest" in plain.stdout


def test_every_run_example_publishes_the_http_grpc_and_metrics_ports():
    for path in (ROOT / "Dockerfile", DEPLOY / "README.md", ROOT / "README.md"):
        runs = [ln for ln in path.read_text(encoding="utf-8").splitlines() if re.search(r"\b(docker|podman) run\b", ln) and " -p " in ln]
        for line in runs:
            assert {"8000:8000", "8001:8001", "8002:8002"} <= set(re.findall(r"-p (\S+)", line)), f"{path.name}: {line}"


def test_dockerignore_sends_only_the_sources():
    rules = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    assert rules[rules.index("*")] == "*" and "!deploy/docker/" in rules
    assert not any(r.startswith("!") and r.strip("!/") in {"tests", "runs", "models", ".git"} for r in rules)


def _pyproject(tmp_path: Path, dependencies: list[str], extras: dict[str, list[str]], dynamic: tuple[str, ...] = ()) -> Path:
    """A minimal pyproject.toml for project zoo in tmp_path (JSON string arrays are valid TOML)."""
    lines = ["[project]", 'name = "zoo"', 'version = "0.1.0"', f"dependencies = {json.dumps(dependencies)}",
             f"dynamic = {json.dumps(list(dynamic))}", "[project.optional-dependencies]"]
    lines += [f"{name} = {json.dumps(reqs)}" for name, reqs in extras.items()]
    path = tmp_path / "pyproject.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _serve_requirements(pyproject: Path, ort: str = "onnxruntime", extra: str = "serve") -> subprocess.CompletedProcess:
    """Run deploy/docker/serve_requirements.py as the Dockerfile does."""
    script = DEPLOY / "docker" / "serve_requirements.py"
    return subprocess.run([sys.executable, str(script), str(pyproject), extra, ort], capture_output=True, text=True)


def _for_image(lines: list[str]) -> list[str]:
    """The names pip installs from these requirement lines in the image (Linux, CPython 3.11), as pip decides."""
    reqs = [Requirement(ln) for ln in lines]
    return [r.name for r in reqs if r.marker is None or r.marker.evaluate(IMAGE_ENV)]


@pytest.mark.parametrize("ort", ["onnxruntime-gpu", "onnxruntime"])
def test_serve_requirements_keep_base_and_serve_deps_and_swap_only_onnxruntime(tmp_path, ort):
    pyproject = _pyproject(tmp_path, ["numpy>=1.24"], {
        "serve": ["onnxruntime-gpu>=1.17", "grpcio>=1.62"],
        "train": ["torch>=2.3,<3", "onnx>=1.16"],
        "dev": ["zoo[serve]"],
    })
    out = _serve_requirements(pyproject, ort)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["numpy>=1.24", f"{ort}>=1.17", "grpcio>=1.62"]


def test_serve_requirements_refuses_an_unknown_onnxruntime(tmp_path):
    out = _serve_requirements(_pyproject(tmp_path, [], {"serve": []}), "torch")
    assert out.returncode == 2 and "ORT must be one of" in out.stderr


def _name_and_marker(req: Requirement) -> tuple[str, str]:
    """(canonical name with onnxruntime-gpu as onnxruntime, marker text) of a requirement."""
    name = canonicalize_name(req.name)
    return ("onnxruntime" if name == "onnxruntime-gpu" else name), str(req.marker)


def test_serve_requirements_keep_every_dependency_of_the_real_serve_extra():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = {_name_and_marker(Requirement(r)) for r in project["dependencies"] + project["optional-dependencies"]["serve"]}
    out = _serve_requirements(ROOT / "pyproject.toml")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    # every requirement reaches pip with its marker as written, e.g. uvloop's `sys_platform != 'win32'`
    assert {_name_and_marker(Requirement(ln)) for ln in lines} == declared
    assert ("uvloop", 'sys_platform != "win32"') in declared and "uvloop" in _for_image(lines)


def test_serve_requirements_leave_markers_to_pip_which_keeps_true_ones_and_drops_false_ones(tmp_path):
    pyproject = _pyproject(tmp_path, ["numpy>=1.24", "tomli>=2; python_version < '3.11'"], {
        "serve": ["uvloop>=0.19; sys_platform != 'win32'", "pywin32>=306; sys_platform == 'win32'",
                  "onnxruntime-gpu>=1.17; platform_machine == 'x86_64'"],
    })
    out = _serve_requirements(pyproject)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines == ["numpy>=1.24", 'tomli>=2; python_version < "3.11"', 'uvloop>=0.19; sys_platform != "win32"',
                     'pywin32>=306; sys_platform == "win32"', 'onnxruntime>=1.17; platform_machine == "x86_64"']
    assert _for_image(lines) == ["numpy", "uvloop", "onnxruntime"]


def test_serve_requirements_resolve_self_references_and_refuse_dynamic_lists(tmp_path):
    pyproject = _pyproject(tmp_path, ["numpy>=1.24"], {"serve": ["zoo[client]", "grpcio-reflection>=1.78"],
                                                      "client": ["grpcio>=1.78", "numpy>=1.24"]})
    out = _serve_requirements(pyproject)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["numpy>=1.24", "grpcio>=1.78", "grpcio-reflection>=1.78"]  # never zoo itself
    out = _serve_requirements(_pyproject(tmp_path, [], {}, dynamic=("optional-dependencies",)))
    assert out.returncode == 2 and "cannot be read statically" in out.stderr


def _read(f, offset: int, size: int) -> bytes:
    """size bytes of an open binary file from offset (the provider library is ~300 MB: never read it whole)."""
    f.seek(offset)
    return f.read(size)


def _elf_needed(path: Path) -> list[str]:
    """DT_NEEDED entries of a 64-bit little-endian ELF library, read from its section headers (no readelf needed)."""
    with path.open("rb") as f:
        head = _read(f, 0, 64)
        assert head[:4] == b"\x7fELF" and head[4] == 2 and head[5] == 1, f"{path}: not a 64-bit little-endian ELF"
        (shoff,) = struct.unpack_from("<Q", head, 0x28)
        shentsize, shnum = struct.unpack_from("<HH", head, 0x3A)
        # Elf64_Shdr: name, type, flags, addr, offset, size, link, info, addralign, entsize
        sections = [struct.unpack("<IIQQQQIIQQ", _read(f, shoff + i * shentsize, 64)) for i in range(shnum)]
        (dynamic,) = [s for s in sections if s[1] == 6]  # SHT_DYNAMIC
        strtab = sections[dynamic[6]]  # its sh_link: the string table (.dynstr) the entries point into
        names = _read(f, strtab[4], strtab[5])
        entries = struct.iter_unpack("<qQ", _read(f, dynamic[4], dynamic[5]))
    return [names[val:names.index(b"\0", val)].decode() for tag, val in entries if tag == 1]  # DT_NEEDED


def _linked_cuda_major() -> int:
    """The CUDA major of the installed onnxruntime-gpu: the libcudart.so.N its CUDA provider links against."""
    spec = importlib.util.find_spec("onnxruntime")
    lib = Path(spec.submodule_search_locations[0]) / "capi" / "libonnxruntime_providers_cuda.so" if spec else None
    if lib is None or not lib.exists():
        pytest.skip("onnxruntime-gpu's CUDA provider library is not installed (CPU-only onnxruntime or none)")
    majors = {int(m.group(1)) for n in _elf_needed(lib) if (m := re.fullmatch(r"libcudart\.so\.(\d+)", n))}
    assert len(majors) == 1, f"{lib} links no single libcudart: {_elf_needed(lib)}"
    return majors.pop()


def test_gpu_base_image_cuda_major_matches_the_installed_onnxruntime_gpu():
    major = _linked_cuda_major()
    for path in (ROOT / "Dockerfile", DEPLOY / "README.md", DEPLOY / "build-image.sh"):
        text = path.read_text(encoding="utf-8")
        tags = re.findall(r"nvidia/cuda:(\d+)\.", text)
        assert tags, f"{path.name} names no nvidia/cuda base image"
        named = {int(n) for n in tags + re.findall(r"\bCUDA (\d+)\b", text) + re.findall(r"libcudart\.so\.(\d+)", text)}
        assert named == {major}, f"{path.name} names CUDA {sorted(named)}; onnxruntime-gpu links libcudart.so.{major}"
