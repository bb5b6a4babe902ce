"""The serving image, built and run for real: no torch inside, non-root, serves health + ModelInfer, drains on SIGTERM.

Needs root, podman, buildah and debootstrap (apt-get install podman buildah debootstrap). Base images are
never pulled: a Debian bookworm root filesystem made with debootstrap is cached under
$ZOO_CONTAINER_CACHE (default ~/.cache/zoo-container) and imported as localhost/zoo-base:bookworm.
`podman run` is not needed: builds use `podman build --isolation=chroot`, and the server runs under
`buildah run --isolation=chroot --network=host` on port 0, its real port read back from its log.

Knobs: ZOO_IMAGE_ORT=onnxruntime-gpu tests the GPU image's (larger) onnxruntime flavour instead of the default CPU
one; ZOO_DEBIAN_MIRROR picks the debootstrap mirror; PIP_INDEX_URL is passed to the build when set.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from tests.integration.server.server_helpers import decode_response, infer_request, reference, wait_until, wait_until_listening

from zoo.core import repository
from zoo.proto import grpc_service_pb2_grpc as pb_grpc

ROOT = Path(__file__).resolve().parents[3]
BASE_IMAGE = "localhost/zoo-base:bookworm"
IMAGE = "localhost/zoo-server:test"
ORT = os.environ.get("ZOO_IMAGE_ORT", "onnxruntime")
MAX_IMAGE_MB = {"onnxruntime": 450, "onnxruntime-gpu": 800}  # torch alone would blow either bound
ISOLATION = ["--isolation=chroot", "--network=host"]
STARTUP_S = 120
TOOLS = ("podman", "buildah", "debootstrap")

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]


def _why_skip() -> str | None:
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "container image tests need root (rootful podman/buildah with chroot isolation)"
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        return f"container image tests need {', '.join(missing)}: apt-get install podman buildah debootstrap"
    return None


if (_reason := _why_skip()) is not None:
    pytestmark.append(pytest.mark.skip(reason=_reason))


def sh(*cmd: str, check: bool = True, timeout: float = 1800, **kw) -> subprocess.CompletedProcess:
    """Run a command, capturing text output; on failure the assertion shows its output."""
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    if check and out.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} -> {out.returncode}\n{out.stdout[-4000:]}\n{out.stderr[-4000:]}")
    return out


def cache_dir() -> Path:
    path = Path(os.environ.get("ZOO_CONTAINER_CACHE", Path.home() / ".cache" / "zoo-container"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def base_image() -> str:
    """localhost/zoo-base:bookworm: debootstrap once into the cache, then `podman import` the tarball."""
    if sh("podman", "image", "exists", BASE_IMAGE, check=False).returncode == 0:
        return BASE_IMAGE
    tarball = cache_dir() / "bookworm-minbase-python3.tar"
    if not tarball.exists():
        rootfs = cache_dir() / "rootfs.partial"
        shutil.rmtree(rootfs, ignore_errors=True)
        mirror = os.environ.get("ZOO_DEBIAN_MIRROR", "http://deb.debian.org/debian")
        sh("debootstrap", "--variant=minbase", "--include=python3,python3-venv,ca-certificates", "bookworm", str(rootfs), mirror)
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for p in (rootfs / junk).glob("*"):
                if p.is_file():
                    p.unlink()
        sh("tar", "-C", str(rootfs), "-cf", str(tarball) + ".partial", ".")
        os.replace(str(tarball) + ".partial", tarball)
        shutil.rmtree(rootfs, ignore_errors=True)
    sh("podman", "import", "--change", 'CMD ["/bin/bash"]', str(tarball), BASE_IMAGE)
    return BASE_IMAGE


@pytest.fixture(scope="module")
def image(base_image) -> dict:
    """Build the image with deploy/build-image.sh FROM the local base; returns `podman image inspect` of it."""
    env = {**os.environ, "ENGINE": "podman", "IMAGE": IMAGE, "BASE": base_image, "ORT": ORT}
    if Path("/etc/ssl/certs/ca-certificates.crt").exists():
        env["HOST_CA"] = "1"  # a TLS-intercepting proxy's CA lives in the host bundle, not in certifi
    t0 = time.monotonic()
    sh(str(ROOT / "deploy" / "build-image.sh"), *ISOLATION, env=env)
    (info,) = json.loads(sh("podman", "image", "inspect", IMAGE).stdout)
    print(f"\nbuilt {IMAGE} (ORT={ORT}) in {time.monotonic() - t0:.0f}s: {info['Size'] / 1e6:.0f} MB")
    return info


@pytest.fixture(scope="module")
def container(image):
    """A buildah working container of the image, removed afterwards."""
    name = f"zoo-image-test-{os.getpid()}"
    sh("buildah", "from", "--name", name, IMAGE)
    yield name
    sh("buildah", "rm", name, check=False)


@pytest.fixture(scope="module")
def models(exported_repo, tmp_path_factory) -> Path:
    """The real exports (iris, breast-cancer), readable by the image's non-root user."""
    root = tmp_path_factory.mktemp("container") / "models"
    shutil.copytree(exported_repo, root)
    # No chmod here: the exporter's own modes must let the image's uid 10001 read the repository.
    return root


def run_in(container: str, *cmd: str, models: Path | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """`buildah run` a command in the container (as the image's user), optionally with models at /models."""
    mount = ["-v", f"{models}:/models:ro"] if models else []
    return sh("buildah", "run", *ISOLATION, *mount, container, "--", *cmd, check=check, timeout=300)


def test_image_config_is_non_root_serving_only_and_small(image):
    cfg = image["Config"]
    assert cfg["User"] == "10001:10001"
    assert cfg["Entrypoint"] == ["/opt/venv/bin/zoo-server"]
    assert {"8001/tcp", "8002/tcp"} <= cfg["ExposedPorts"].keys()
    env = dict(e.split("=", 1) for e in cfg["Env"])
    assert env["ZOO_REPOSITORY"] == "/models" and env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert image["Size"] / 1e6 < MAX_IMAGE_MB[ORT], f"{image['Size'] / 1e6:.0f} MB"
    # HEALTHCHECK survives only in the docker image format, which build-image.sh asks for
    assert image["Healthcheck"]["Test"] == ["CMD", "/opt/venv/bin/python", "/opt/zoo/healthcheck.py"]


def test_image_holds_no_torch_onnx_pip_or_compiler(container):
    for module in ("torch", "onnx", "pip", "setuptools"):
        out = run_in(container, "python", "-c", f"import {module}", check=False)
        assert out.returncode != 0 and "ModuleNotFoundError" in out.stderr, module
    assert run_in(container, "sh", "-c", "command -v gcc cc pip pip3", check=False).stdout.strip() == ""
    assert run_in(container, "id", "-u").stdout.strip() == "10001"
    assert ORT in run_in(container, "python", "-c", "import importlib.metadata as m; print(*[d.metadata['Name'] for d in m.distributions()])").stdout
    assert "Usage: zoo-server" in run_in(container, "zoo-server", "--help").stdout


def test_image_has_uvloop_whose_requirement_carries_a_marker(container):
    # `uvloop>=0.19; sys_platform != 'win32'` in the serve extra: its marker must reach pip, not drop the line
    assert run_in(container, "python", "-c", "import uvloop; print(uvloop.__version__)").stdout.strip()


def _children(pid: int) -> list[int]:
    """All descendants of pid, from /proc."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        kids = [c for c, pp in parents.items() if pp == p]
        out += kids
        todo += kids
    return out


def _server_pid(buildah_pid: int) -> int:
    """The python process of zoo-server under `buildah run` (buildah does not forward SIGTERM gracefully)."""
    for pid in _children(buildah_pid):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv[0].endswith(b"python3") and any(a.endswith(b"zoo-server") for a in argv):
            return pid
    raise AssertionError("zoo-server process not found under buildah run")


@pytest.fixture
def served(container, models):
    """zoo-server running in the container on ephemeral ports: (grpc port, metrics port, process, log lines)."""
    cmd = ["buildah", "run", *ISOLATION, "-v", f"{models}:/models:ro", container, "--",
           "zoo-server", "--host", "127.0.0.1", "--port", "0", "--metrics-port", "0", "--http-port", "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        port, metrics, lines = wait_until_listening(proc, STARTUP_S)
    except RuntimeError as e:
        pytest.fail(f"zoo-server in the container did not start: {e}")
    if proc.poll() is not None:
        pytest.fail("zoo-server in the container exited:\n" + "".join(lines))
    yield port, metrics, proc, lines
    if proc.poll() is None:
        # killing `buildah run` alone leaves the server running, reparented to init, when a test failed early
        with contextlib.suppress(AssertionError, ProcessLookupError):
            os.kill(_server_pid(proc.pid), signal.SIGKILL)
        proc.kill()
        proc.wait(30)


def test_served_from_the_container_health_infer_metrics_and_graceful_sigterm(served, container, models):
    port, metrics_port, proc, lines = served
    # logged before "listening", so already among the lines wait_until_listening read
    assert any("event loop: uvloop" in ln for ln in lines), "".join(lines)
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "iris", "breast-cancer"):
            reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING, service
        x = np.random.default_rng(0).normal(0, 2, (16, 4)).astype(np.float32) + 4
        got = decode_response(pb_grpc.GRPCInferenceServiceStub(channel).ModelInfer(infer_request("iris", x), timeout=10))
    want = reference(models, "iris", repository.latest_version(models, "iris"), x)
    np.testing.assert_allclose(got["probabilities"], want["probabilities"], atol=1e-6)
    np.testing.assert_array_equal(got["label"], want["label"])

    body = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).read().decode()
    assert "zoo_" in body
    http_port = int(next(ln for ln in lines if "listening on" in ln).split("HTTP port ")[1].split(",")[0])
    ready = urllib.request.urlopen(f"http://127.0.0.1:{http_port}/v2/health/ready", timeout=10)
    assert ready.status == 200 and json.loads(ready.read()) == {"ready": True}

    # the image's HEALTHCHECK command, run inside the image against the live server
    check = run_in(container, "env", f"ZOO_PORT={port}", "/opt/venv/bin/python", "/opt/zoo/healthcheck.py")
    assert check.stdout.strip() == "SERVING"

    os.kill(_server_pid(proc.pid), signal.SIGTERM)
    assert proc.wait(60) == 0, "".join(lines)
    # the reader thread may still be taking the last lines from the pipe
    wait_until(lambda: any("zoo-server stopped" in ln for ln in lines), "the server's last log line")


def test_healthcheck_fails_when_nothing_listens(container):
    out = run_in(container, "env", "ZOO_PORT=1", "/opt/venv/bin/python", "/opt/zoo/healthcheck.py", check=False)
    assert out.returncode == 1 and "unhealthy" in out.stderr
