"""--workers: processes sharing the port under a supervisor; every worker serves, sees explicit loads, is restarted
when it dies, and its statistics and metrics are merged."""

from __future__ import annotations

import os
import re
import signal

import grpc
import numpy as np
import pytest
from tests.integration.server.server_helpers import (
    copy_version, decode_response, infer_request, metric, reference, rows_for, scrape, start_subprocess_server, wait_until,
)

from zoo.core import repository
from zoo.proto import grpc_service_pb2 as pb
from zoo.proto import grpc_service_pb2_grpc as pb_grpc

FRESH = [("grpc.use_local_subchannel_pool", 1)]  # a new TCP connection per channel: the kernel picks a worker for each


def on_worker(port: int, index: int, call):
    """Run call(stub) on a connection that the kernel gave to worker `index` (new connections until one is)."""
    found: list = []

    def attempt() -> bool:
        with grpc.insecure_channel(f"127.0.0.1:{port}", options=FRESH) as ch:
            stub = pb_grpc.GRPCInferenceServiceStub(ch)
            _, c = stub.ServerMetadata.with_call(pb.ServerMetadataRequest(), timeout=30)
            if dict(c.trailing_metadata()).get("zoo-worker") == str(index):
                found.append(call(stub))
                return True
        return False

    wait_until(attempt, f"a connection to worker {index}", step_s=0)
    return found[0]


def worker_pids(lines: list[str]) -> dict[int, int]:
    """The latest pid of each worker, from the supervisor's log."""
    pids = {}
    for line in lines:
        m = re.search(r"worker (\d+) \(pid (\d+)\) ready", line)
        if m:
            pids[int(m.group(1))] = int(m.group(2))
    return pids


@pytest.fixture
def workers(model_repo, tmp_path):
    """Two workers in explicit mode over a private copy of the repository: (port, metrics port, log lines, repo)."""
    import shutil

    repo = tmp_path / "models"
    shutil.copytree(model_repo, repo)
    proc, port, lines, metrics_port = start_subprocess_server(repo, "--workers", "2", "--model-control-mode", "explicit",
                                                              "--load-model", "iris", metrics=True)
    yield port, metrics_port, lines, repo
    proc.send_signal(signal.SIGTERM)
    rc = proc.wait(60)
    assert rc == 0, "".join(lines)
    assert any("zoo-server stopped" in line for line in lines)


def test_every_worker_serves_and_sees_an_explicit_load(workers):
    port, _, _, repo = workers
    x = rows_for(repo, "breast-cancer", 3, seed=1)
    want = reference(repo, "breast-cancer", 1, x)["probabilities"]
    for i in (0, 1):  # breast-cancer was not loaded at start
        assert not on_worker(port, i, lambda s: _ready(s, "breast-cancer"))
    on_worker(port, 0, lambda s: s.RepositoryModelLoad(pb.RepositoryModelLoadRequest(model_name="breast-cancer"), timeout=60))
    for i in (0, 1):  # worker 1 got the load from the supervisor
        wait_until(lambda: on_worker(port, i, lambda s: _ready(s, "breast-cancer")), f"worker {i} to serve breast-cancer")
        got = on_worker(port, i, lambda s: decode_response(s.ModelInfer(infer_request("breast-cancer", x), timeout=30)))
        np.testing.assert_allclose(got["probabilities"], want, atol=1e-6)
    on_worker(port, 1, lambda s: s.RepositoryModelUnload(pb.RepositoryModelUnloadRequest(model_name="breast-cancer"), timeout=60))
    wait_until(lambda: not on_worker(port, 0, lambda s: _ready(s, "breast-cancer")), "worker 0 to unload breast-cancer")


def _ready(stub, name: str) -> bool:
    try:
        return stub.ModelReady(pb.ModelReadyRequest(name=name), timeout=30).ready
    except grpc.RpcError:
        return False


def test_statistics_and_metrics_add_up_across_workers(workers):
    port, metrics_port, _, repo = workers
    x = rows_for(repo, "iris", 2, seed=2)
    for i, n in ((0, 3), (1, 4)):
        on_worker(port, i, lambda s: [s.ModelInfer(infer_request("iris", x), timeout=30) for _ in range(n)])

    def stats(i):
        return on_worker(port, i, lambda s: s.ModelStatistics(pb.ModelStatisticsRequest(name="iris", version="2"), timeout=30).model_stats[0])

    # Each worker answers for all: its own counters plus the others' snapshots (at most half a second old).
    wait_until(lambda: stats(0).inference_stats.success.count >= 7 and stats(1).inference_stats.success.count >= 7,
               "merged statistics", step_s=0.1)
    s = stats(1)
    assert (s.inference_stats.success.count, s.inference_count) == (7, 14)
    assert metric(scrape(metrics_port), "zoo_requests_total", model="iris", version="2") == 7


def test_a_dead_worker_is_replaced_and_keeps_the_loaded_models(workers):
    port, _, lines, repo = workers
    on_worker(port, 0, lambda s: s.RepositoryModelLoad(pb.RepositoryModelLoadRequest(model_name="breast-cancer"), timeout=60))
    wait_until(lambda: on_worker(port, 1, lambda s: _ready(s, "breast-cancer")), "worker 1 to load breast-cancer")
    old = worker_pids(lines)[1]
    os.kill(old, signal.SIGKILL)
    wait_until(lambda: worker_pids(lines).get(1, old) != old, "the supervisor to start a new worker 1")
    x = rows_for(repo, "breast-cancer", 2, seed=3)
    got = on_worker(port, 1, lambda s: decode_response(s.ModelInfer(infer_request("breast-cancer", x), timeout=30)))
    np.testing.assert_allclose(got["probabilities"], reference(repo, "breast-cancer", 1, x)["probabilities"], atol=1e-6)
    assert any("worker 1" in line and "killed by SIGKILL" in line for line in lines)


def test_a_worker_killed_again_and_again_comes_back_each_time_and_the_server_never_gives_up(workers):
    # Before: more than ten restarts in a minute made the supervisor exit, taking the healthy worker with it.
    port, _, lines, repo = workers
    x = rows_for(repo, "iris", 2, seed=4)
    want = reference(repo, "iris", 2, x)["probabilities"]
    for kill in range(12):
        index = kill % 2
        old = worker_pids(lines)[index]
        os.kill(old, signal.SIGKILL)
        wait_until(lambda: worker_pids(lines).get(index, old) != old, f"worker {index} to come back after kill {kill + 1}", timeout_s=180)
        got = on_worker(port, index, lambda s: decode_response(s.ModelInfer(infer_request("iris", x), timeout=30)))
        np.testing.assert_allclose(got["probabilities"], want, atol=1e-6)
    said = [line for line in lines if "killed by SIGKILL" in line]
    assert len(said) == 12 and "starting a new one in" in said[-1], "".join(lines)
    assert not any("giving up" in line for line in lines)


def test_two_workers_poll_the_repository_each(model_repo, tmp_path):
    import shutil

    repo = tmp_path / "models"
    shutil.copytree(model_repo, repo)
    proc, port, lines = start_subprocess_server(repo, "--workers", "2", "--model-control-mode", "poll", "--poll-interval", "0.1")
    try:
        copy_version(model_repo, "iris", 1, repo, "iris", 3)
        for i in (0, 1):
            wait_until(lambda: on_worker(port, i, lambda s: s.ModelInfer(infer_request("iris", np.ones((1, 4), np.float32)),
                                                                          timeout=30).model_version) == "3",
                       f"worker {i} to serve the new version")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0, "".join(lines)


def test_monitoring_figures_add_up_across_workers(workers):
    port, metrics_port, _, repo = workers
    card = repository.read_card(repo, "iris", 2)
    x = rows_for(repo, "iris", 3, seed=4)
    labels = reference(repo, "iris", 2, x)["label"]
    for i, n in ((0, 2), (1, 5)):
        on_worker(port, i, lambda s: [s.ModelInfer(infer_request("iris", x), timeout=30) for _ in range(n)])

    def served() -> dict[str, float]:
        text = scrape(metrics_port)
        return {c: metric(text, "zoo_predictions_total", model="iris", version="2", label=c) or 0 for c in card.class_names}

    # the supervisor adds the workers' drift counts (their snapshots are at most half a second old)
    wait_until(lambda: sum(served().values()) >= 21, "the supervisor's prediction counts", step_s=0.1)
    assert served() == {c: 7 * int((labels == i).sum()) for i, c in enumerate(card.class_names)}
    psi = metric(scrape(metrics_port), "zoo_feature_drift_psi", model="iris", version="2", feature=card.feature_names[0])
    assert psi is not None and psi >= 0
