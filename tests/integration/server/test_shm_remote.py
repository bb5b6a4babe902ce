"""Shared memory from another host: a client in a network namespace of its own, reaching the server over a veth
pair this test makes, is refused every shared-memory operation and every inference that names a region (gRPC and
HTTP), while its plain inferences are served. No traffic goes to any address but the two ends of that pair."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid

import numpy as np
import pytest
from tests.integration.server.server_helpers import ThreadServer, rows_for, settings_for

shm = pytest.importorskip("tritonclient.utils.shared_memory")
pytest.importorskip("tritonclient.grpc")
pytest.importorskip("tritonclient.http")

CLIENT = r"""
import json, sys
import numpy as np
import tritonclient.grpc as g
import tritonclient.http as h

grpc_address, http_address, name, key, rows = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
x = np.ones((rows, 4), np.float32)
out = {}

def attempt(label, call):
    try:
        call()
        out[label] = "OK"
    except (g.InferenceServerException, h.InferenceServerException) as e:
        out[label] = f"{e.status()}: {e.message()}"

for mod, address, tag in ((g, grpc_address, "grpc"), (h, http_address, "http")):
    c = mod.InferenceServerClient(address)
    shm_in = mod.InferInput("input", [rows, 4], "FP32")
    shm_in.set_shared_memory(name, x.nbytes)
    plain = mod.InferInput("input", [rows, 4], "FP32")
    plain.set_data_from_numpy(x)
    shm_out = mod.InferRequestedOutput("probabilities")
    shm_out.set_shared_memory(name, x.nbytes)
    attempt(f"{tag} status", lambda: c.get_system_shared_memory_status())
    attempt(f"{tag} status of the region", lambda: c.get_system_shared_memory_status(name))
    attempt(f"{tag} register", lambda: c.register_system_shared_memory("mine", key, 16))
    attempt(f"{tag} unregister the region", lambda: c.unregister_system_shared_memory(name))
    attempt(f"{tag} unregister all", lambda: c.unregister_system_shared_memory())
    attempt(f"{tag} infer reading the region", lambda: c.infer("iris", [shm_in]))
    attempt(f"{tag} infer writing the region", lambda: c.infer("iris", [plain], outputs=[shm_out]))
    attempt(f"{tag} plain infer", lambda: c.infer("iris", [plain]))
print(json.dumps(out))
"""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=check)


def _why_no_netns() -> str | None:
    if os.geteuid() != 0:
        return "making a network namespace and a veth pair needs root (CI runs as root)"
    if shutil.which("ip") is None:
        return "needs iproute2's `ip` to make a network namespace"
    probe = f"zoo-probe-{uuid.uuid4().hex[:6]}"
    made = _ip("netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"`ip netns add` does not work here: {made.stderr.strip()}"
    _ip("netns", "del", probe, check=False)
    return None


@pytest.fixture
def remote_peer():
    """(server address, client namespace): a namespace reaching this one over a fresh veth pair (10.213.x.0/30)."""
    why = _why_no_netns()
    if why:
        pytest.skip(why)
    tag = uuid.uuid4().hex[:6]
    ns, here, there = f"zoo-remote-{tag}", f"zh{tag}", f"zr{tag}"
    net = f"10.213.{int(tag[:2], 16)}"
    if f"inet {net}." in _ip("-4", "addr").stdout:
        pytest.skip(f"{net}.0/30 is already in use on this machine")
    _ip("netns", "add", ns)
    try:
        _ip("link", "add", here, "type", "veth", "peer", "name", there)
        _ip("link", "set", there, "netns", ns)
        _ip("addr", "add", f"{net}.1/30", "dev", here)
        _ip("link", "set", here, "up")
        _ip("-n", ns, "addr", "add", f"{net}.2/30", "dev", there)
        _ip("-n", ns, "link", "set", there, "up")
        _ip("-n", ns, "link", "set", "lo", "up")
        yield f"{net}.1", ns
    finally:
        _ip("netns", "del", ns, check=False)  # takes its end of the pair, and so the pair, with it
        _ip("link", "del", here, check=False)


def test_a_client_on_another_host_may_not_touch_shared_memory(model_repo, remote_peer, tmp_path):
    # Before: only registering was refused; a remote client listed, read, overwrote and unregistered every region.
    host, ns = remote_peer
    srv = ThreadServer(settings_for(model_repo, allow_shared_memory=True, host=host, metrics_port=-1)).start()
    name = f"zoo-test-{uuid.uuid4().hex[:12]}"
    x = rows_for(model_repo, "iris", 3, seed=26)
    handle = shm.create_shared_memory_region(name, "/" + name, x.nbytes)
    try:
        shm.set_shared_memory_region(handle, [x])
        srv.server.plane.register_region(name, "/" + name, 0, x.nbytes)  # a local client's region
        script = tmp_path / "client.py"
        script.write_text(CLIENT)
        run = subprocess.run(
            ["ip", "netns", "exec", ns, sys.executable, str(script), f"{host}:{srv.port}", f"{host}:{srv.server.http_port}",
             name, "/" + name, str(len(x))],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert run.returncode == 0, run.stderr
        said = json.loads(run.stdout.strip().splitlines()[-1])
        for label, outcome in said.items():
            if label.endswith("plain infer"):
                assert outcome == "OK", (label, outcome)
            else:
                denied = "StatusCode.PERMISSION_DENIED" if label.startswith("grpc") else "403"
                assert outcome.startswith(denied) and "own host" in outcome, (label, outcome)
        assert len(said) == 16
        assert srv.server.plane.shm.status() == [(name, "/" + name, 0, x.nbytes)]  # still registered
        np.testing.assert_array_equal(shm.get_contents_as_numpy(handle, np.float32, list(x.shape)), x)  # untouched
    finally:
        srv.stop()
        shm.destroy_shared_memory_region(handle)
