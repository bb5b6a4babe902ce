"""A bounded soak on loopback: many callers with distinct rows while a version is published and a model is unloaded
and loaded again. Zero wrong rows, no error outside the documented unload window, bounded memory growth.

Bounded by counts of answers, not by time: every phase waits for a number of answers, so the test does the same
work on a fast or a loaded machine.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import grpc
import numpy as np
import pytest
from tests.integration.server.server_helpers import (
    copy_version, decode_response, infer_request, reference, rows_for, start_subprocess_server, wait_until,
)

from zoo.proto import grpc_service_pb2 as pb
from zoo.proto import grpc_service_pb2_grpc as pb_grpc

CALLERS = 8
PHASE = 300  # answers between two administrative steps
MEMORY_GROWTH_MB = 64


def rss_mb(pid: int) -> float:
    """Resident memory of a process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.mark.slow
def test_soak_with_a_publish_and_an_unload_loses_and_mixes_nothing(model_repo, tmp_path):
    import shutil

    repo = tmp_path / "models"
    shutil.copytree(model_repo, repo)
    proc, port, lines = start_subprocess_server(repo, "--model-control-mode", "explicit", "--load-model", "*")
    answers: list[tuple[str, str, int, np.ndarray]] = []  # (model, version, caller, probabilities)
    errors: list[tuple[str, grpc.StatusCode, str, bool]] = []  # (model, code, details, inside the unload window)
    unload_window = threading.Event()
    stop = threading.Event()
    rows = {i: rows_for(repo, "iris" if i % 2 else "breast-cancer", 2 + i % 3, seed=100 + i) for i in range(CALLERS)}

    def caller(i: int) -> None:
        model = "iris" if i % 2 else "breast-cancer"
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            stub = pb_grpc.GRPCInferenceServiceStub(ch)
            while not stop.is_set():
                window = unload_window.is_set()
                try:
                    r = stub.ModelInfer(infer_request(model, rows[i]), timeout=60)
                    answers.append((model, r.model_version, i, decode_response(r)["probabilities"]))
                except grpc.RpcError as e:
                    errors.append((model, e.code(), e.details(), window or unload_window.is_set()))

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(CALLERS)]
    try:
        for t in threads:
            t.start()
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            admin = pb_grpc.GRPCInferenceServiceStub(ch)
            wait_until(lambda: len(answers) >= PHASE, "warm-up answers", timeout_s=300)
            baseline = rss_mb(proc.pid)
            copy_version(model_repo, "iris", 1, repo, "iris", 3)  # publish: v3 takes over iris
            admin.RepositoryModelLoad(pb.RepositoryModelLoadRequest(model_name="iris"), timeout=120)
            published = len(answers)
            wait_until(lambda: len(answers) >= 2 * PHASE, "answers after the publish", timeout_s=300)
            unload_window.set()
            admin.RepositoryModelUnload(pb.RepositoryModelUnloadRequest(model_name="breast-cancer"), timeout=120)
            admin.RepositoryModelLoad(pb.RepositoryModelLoadRequest(model_name="breast-cancer"), timeout=120)
            unload_window.clear()
            mark = len(answers)
            wait_until(lambda: len(answers) >= mark + 2 * PHASE, "answers after the reload", timeout_s=300)
            grown = rss_mb(proc.pid) - baseline
    finally:
        stop.set()
        for t in threads:
            t.join(120)
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(60)
    assert rc == 0, "".join(lines)
    outside = [e for e in errors if not e[3]]
    assert not outside, outside[:3]
    assert all(m == "breast-cancer" and code == grpc.StatusCode.UNAVAILABLE and "unloaded" in d for m, code, d, _ in errors), errors[:3]
    want = {(m, v, i): reference(repo, m, int(v), rows[i])["probabilities"]
            for m, v, i in {(m, v, i) for m, v, i, _ in answers}}
    wrong = [(m, v, i) for m, v, i, p in answers if not np.allclose(p, want[(m, v, i)], atol=1e-6)]
    assert not wrong, wrong[:3]
    assert {v for m, v, _, _ in answers[:published] if m == "iris"} >= {"2"}
    # Once the load returned, only requests already in flight (one per caller at most) may still finish on v2.
    assert {v for m, v, _, _ in answers[published + CALLERS:] if m == "iris"} == {"3"}
    assert grown < MEMORY_GROWTH_MB, f"server memory grew {grown:.0f} MB during the soak"
