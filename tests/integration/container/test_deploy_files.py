"""Fast checks of the deployment files: the manifests parse and agree with the image, the Dockerfile keeps its promises."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from tests.conftest import in_ci

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"


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
    assert {p["containerPort"] for p in c["ports"]} == {8001, 8002}
    env = {e["name"]: e["value"] for e in c["env"]}
    assert env["ZOO_REPOSITORY"] == "/models" and env["ZOO_PORT"] == "8001"
    assert {"name": "models", "mountPath": "/models", "readOnly": True} in c["volumeMounts"]
    claims = [v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"] if "persistentVolumeClaim" in v]
    assert claims == ["zoo-models"]
    assert pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["runAsUser"] == 10001
    assert "requests" in c["resources"] and "limits" in c["resources"]
    assert pod["terminationGracePeriodSeconds"] > 10  # longer than the server's default drain


def test_service_exposes_grpc_and_metrics_with_scrape_annotations(docs):
    svc = docs[("Service", "zoo-server")]
    assert {p["port"] for p in svc["spec"]["ports"]} == {8001, 8002}
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
    assert 'ENTRYPOINT ["/opt/venv/bin/zoo-server"]' in lines
    assert "USER 10001:10001" in lines and "EXPOSE 8001 8002" in lines
    assert any(ln.startswith("HEALTHCHECK") for ln in lines)
    code = "\n".join(lines).lower()
    assert "torch" not in code and "[train]" not in code and "zoo serve" not in code  # the image never trains


def test_dockerignore_sends_only_the_sources():
    rules = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    assert rules[rules.index("*")] == "*" and "!deploy/docker/" in rules
    assert not any(r.startswith("!") and r.strip("!/") in {"tests", "runs", "models", ".git"} for r in rules)


def _wheel(tmp_path: Path, requires: list[str]) -> Path:
    path = tmp_path / "zoo-0.1.0-py3-none-any.whl"
    meta = "Metadata-Version: 2.1\nName: zoo\nVersion: 0.1.0\n" + "".join(f"Requires-Dist: {r}\n" for r in requires)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("zoo-0.1.0.dist-info/METADATA", meta)
    return path


@pytest.mark.parametrize("ort", ["onnxruntime-gpu", "onnxruntime"])
def test_serve_requirements_keep_base_and_serve_deps_and_swap_only_onnxruntime(tmp_path, ort):
    wheel = _wheel(tmp_path, ["numpy>=1.24", 'onnxruntime-gpu>=1.17; extra == "serve"', 'grpcio>=1.62; extra == "serve"',
                              'torch<3,>=2.3; extra == "train"', 'onnx>=1.16; extra == "train"', "zoo[serve]; extra == 'dev'"])
    script = DEPLOY / "docker" / "serve_requirements.py"
    out = subprocess.run([sys.executable, str(script), str(wheel), "serve", ort], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["numpy>=1.24", f"{ort}>=1.17", "grpcio>=1.62"]


def test_serve_requirements_refuses_an_unknown_onnxruntime(tmp_path):
    script = DEPLOY / "docker" / "serve_requirements.py"
    out = subprocess.run([sys.executable, str(script), str(_wheel(tmp_path, [])), "serve", "torch"], capture_output=True, text=True)
    assert out.returncode == 2 and "ORT must be one of" in out.stderr
