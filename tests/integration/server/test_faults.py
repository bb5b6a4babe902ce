"""Faults around the server: path attacks on the repository RPCs, files that are not what they seem, models that
change or vanish on disk, a loader that hangs, and an export killed half-way."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import grpc
import numpy as np
import pytest
from tests.integration.server.server_helpers import (
    ThreadServer, copy_version, decode_response, infer_request, reference, rows_for, settings_for, wait_until,
)

from zoo.core import repository
from zoo.proto import grpc_service_pb2 as pb
from zoo.proto import grpc_service_pb2_grpc as pb_grpc
from zoo.server.model_files import RepositoryFiles
from zoo.server.registry import Registry


def _status(fn) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as e:
        fn()
    return e.value.code(), e.value.details()


def _index(stub) -> dict[tuple[str, str], tuple[str, str]]:
    return {(m.name, m.version): (m.state, m.reason) for m in stub.RepositoryIndex(pb.RepositoryIndexRequest()).models}


def _repo_with(model_repo: Path, root: Path, *names: str) -> Path:
    root.mkdir(parents=True)
    for name in names:
        shutil.copytree(model_repo / name, root / name)
    return root


def test_path_attacks_on_the_repository_rpcs_reach_nothing_outside(model_repo, tmp_path):
    repo = _repo_with(model_repo, tmp_path / "models", "iris")
    outside = tmp_path / "outside"
    copy_version(model_repo, "breast-cancer", 1, outside, "escape", 1)
    (repo / "escape").symlink_to(outside / "escape", target_is_directory=True)  # a real model, but outside
    srv = ThreadServer(settings_for(repo, model_control_mode="explicit")).start()
    try:
        with grpc.insecure_channel(srv.address) as ch:
            stub = pb_grpc.GRPCInferenceServiceStub(ch)
            for name in ("../outside/escape", "/proc", str(outside / "escape"), "..", "iris/../../outside", "a" * 200):
                code, msg = _status(lambda: stub.RepositoryModelLoad(pb.RepositoryModelLoadRequest(model_name=name)))
                assert code == grpc.StatusCode.INVALID_ARGUMENT and "invalid model name" in msg
            code, msg = _status(lambda: stub.RepositoryModelLoad(pb.RepositoryModelLoadRequest(model_name="escape")))
            assert code == grpc.StatusCode.UNAVAILABLE and "outside the repository" in msg and "--allow-external-symlinks" in msg
            code, msg = _status(lambda: stub.ModelInfer(infer_request("escape", rows_for(model_repo, "breast-cancer", 1))))
            assert code == grpc.StatusCode.UNAVAILABLE and "'escape' is not ready" in msg and "outside the repository" in msg
            assert str(outside) not in msg and str(repo) not in msg  # no server path, inside or outside
            stub.RepositoryModelLoad(pb.RepositoryModelLoadRequest(model_name="iris"))
            index = _index(stub)
            assert {n for n, _ in index} == {"iris", "escape"}  # what the repository holds, nothing of the host
            assert index[("iris", "2")] == ("READY", "")
            assert "outside the repository" in index[("escape", "")][1]
    finally:
        srv.stop()
    # With the explicit flag, the same symlink serves.
    srv = ThreadServer(settings_for(repo, allow_external_symlinks=True)).start()
    try:
        with grpc.insecure_channel(srv.address) as ch:
            x = rows_for(model_repo, "breast-cancer", 2)
            got = decode_response(pb_grpc.GRPCInferenceServiceStub(ch).ModelInfer(infer_request("escape", x)))
        np.testing.assert_allclose(got["probabilities"], reference(outside, "escape", 1, x)["probabilities"], atol=1e-6)
    finally:
        srv.stop()


def test_a_fifo_a_device_and_a_sparse_terabyte_are_refused_by_stat_and_stall_nothing(model_repo, tmp_path):
    repo = _repo_with(model_repo, tmp_path / "models", "iris")
    for name, make in (("fifo", lambda p: os.mkfifo(p)), ("device", lambda p: p.symlink_to("/dev/zero")),
                       ("huge", lambda p: os.truncate(p.open("wb").name, 1 << 40))):
        v = copy_version(model_repo, "breast-cancer", 1, repo, name, 1)
        (v / repository.MODEL_FILE).unlink()
        make(v / repository.MODEL_FILE)
    srv = ThreadServer(settings_for(repo, model_control_mode="poll", poll_interval=0.05)).start()  # a hang would stop start()
    try:
        with grpc.insecure_channel(srv.address) as ch:
            stub = pb_grpc.GRPCInferenceServiceStub(ch)
            index = _index(stub)
            assert "not a regular file (a FIFO)" in index[("fifo", "1")][1]
            assert "leaves the model's folder" in index[("device", "1")][1]
            assert "1,099,511,627,776 bytes; the limit is" in index[("huge", "1")][1] and "--max-model-bytes" in index[("huge", "1")][1]
            x = rows_for(model_repo, "iris", 2)
            assert decode_response(stub.ModelInfer(infer_request("iris", x)))["probabilities"].shape == (2, 3)
    finally:
        srv.stop()


def test_the_poll_follows_deletions_repairs_and_changes_on_disk(model_repo, tmp_path):
    repo = _repo_with(model_repo, tmp_path / "models", "iris", "breast-cancer")
    srv = ThreadServer(settings_for(repo, model_control_mode="poll", poll_interval=0.05)).start()
    x = rows_for(model_repo, "iris", 3, seed=2)
    try:
        with grpc.insecure_channel(srv.address) as ch:
            stub = pb_grpc.GRPCInferenceServiceStub(ch)
            versions = lambda: list(stub.ModelMetadata(pb.ModelMetadataRequest(name="iris")).versions)  # noqa: E731
            # A deleted version is drained and unloaded; the default falls back to the one left.
            shutil.rmtree(repo / "iris" / "2")
            wait_until(lambda: versions() == ["1"], "iris v2 to be unloaded")
            assert stub.ModelInfer(infer_request("iris", x)).model_version == "1"
            # A deleted model disappears.
            shutil.rmtree(repo / "breast-cancer")

            def gone() -> bool:
                try:
                    stub.ModelMetadata(pb.ModelMetadataRequest(name="breast-cancer"))
                except grpc.RpcError as e:
                    return e.code() == grpc.StatusCode.NOT_FOUND
                return False

            wait_until(gone, "breast-cancer to be unloaded")
            assert ("breast-cancer", "1") not in _index(stub)
            # A broken version is refused; repaired (same metadata, the right bytes again) it is retried and served.
            v3 = copy_version(model_repo, "iris", 2, repo, "iris", 3)
            good = (v3 / repository.MODEL_FILE).read_bytes()
            (v3 / repository.MODEL_FILE).write_bytes(good[:-16] + b"\0" * 16)
            wait_until(lambda: "corrupt" in _index(stub).get(("iris", "3"), ("", ""))[1], "the broken v3 to be refused")
            assert stub.ModelInfer(infer_request("iris", x)).model_version == "1"
            (v3 / repository.MODEL_FILE).write_bytes(good)
            wait_until(lambda: _index(stub).get(("iris", "3")) == ("READY", ""), "the repaired v3 to be served")
            got = decode_response(stub.ModelInfer(infer_request("iris", x)))
            np.testing.assert_allclose(got["probabilities"], reference(model_repo, "iris", 2, x)["probabilities"], atol=1e-6)
            # Files changed under a serving version: it keeps serving what it loaded, and the index says why.
            (v3 / repository.MODEL_FILE).write_bytes(b"not a model any more")
            wait_until(lambda: "files changed on disk" in _index(stub)[("iris", "3")][1], "the index to report the change")
            assert _index(stub)[("iris", "3")][0] == "READY"
            got = decode_response(stub.ModelInfer(infer_request("iris", x)))
            np.testing.assert_allclose(got["probabilities"], reference(model_repo, "iris", 2, x)["probabilities"], atol=1e-6)
    finally:
        srv.stop()


def _edit_card(folder: Path, **changes) -> None:
    """Rewrite a version's metadata.json with `changes`, atomically as an editor's save-and-rename does."""
    meta = json.loads((folder / repository.METADATA_FILE).read_text())
    meta.update(changes)
    (folder / ".metadata.tmp").write_text(json.dumps(meta))  # json writes NaN as the NaN literal, which json reads
    os.replace(folder / ".metadata.tmp", folder / repository.METADATA_FILE)


def test_an_edited_metadata_json_is_swapped_in_without_failing_a_request_or_refused_saying_why(model_repo, tmp_path):
    repo = _repo_with(model_repo, tmp_path / "models", "iris")
    srv = ThreadServer(settings_for(repo, model_control_mode="poll", poll_interval=0.05)).start()
    x = rows_for(model_repo, "iris", 5, seed=4)
    want = reference(model_repo, "iris", 2, x)
    renamed = ["Setosa", "Versicolor", "Virginica"]
    failures: list[str] = []
    answered = threading.Event()
    try:
        with grpc.insecure_channel(srv.address) as ch:
            stub = pb_grpc.GRPCInferenceServiceStub(ch)
            config = stub.ModelConfig(pb.ModelConfigRequest(name="iris")).config
            class_names = lambda: json.loads(  # noqa: E731
                stub.ModelConfig(pb.ModelConfigRequest(name="iris")).config.parameters["class_names"].string_value)
            assert class_names() == json.loads(config.parameters["class_names"].string_value) != renamed
            stop = threading.Event()

            def client() -> None:  # requests all through the swap: every one must be answered, and right
                while not stop.is_set():
                    try:
                        got = decode_response(stub.ModelInfer(infer_request("iris", x)))
                        np.testing.assert_array_equal(got["label"], want["label"])
                        answered.set()
                    except (grpc.RpcError, AssertionError) as e:
                        failures.append(repr(e))

            t = threading.Thread(target=client)
            t.start()
            try:
                wait_until(answered.is_set, "a first answer")
                _edit_card(repo / "iris" / "2", class_names=renamed)
                wait_until(lambda: class_names() == renamed, "the edited class names to be served")
                answered.clear()
                wait_until(answered.is_set, "an answer from the edited version")
            finally:
                stop.set()
                t.join(60)
            assert failures == []
            assert _index(stub)[("iris", "2")] == ("READY", "")
            # A threshold that makes no sense: refused with its reason, the loaded card keeps serving.
            _edit_card(repo / "iris" / "2", class_names=renamed, default_threshold=float("nan"))
            wait_until(lambda: "default_threshold" in _index(stub)[("iris", "2")][1], "the index to say why the edit is refused")
            state, reason = _index(stub)[("iris", "2")]
            assert state == "READY" and "iris/2/metadata.json: metadata default_threshold must be a number in [0, 1]" in reason
            assert "got nan" in reason and reason.endswith("serving the loaded copy") and str(tmp_path) not in reason
            assert class_names() == renamed
            got = decode_response(stub.ModelInfer(infer_request("iris", x)))
            np.testing.assert_array_equal(got["label"], want["label"])
    finally:
        srv.stop()


def test_a_version_without_self_check_rows_is_refused(model_repo, tmp_path):
    repo = _repo_with(model_repo, tmp_path / "models", "iris")
    v = repo / "iris" / "2"
    meta = json.loads((v / repository.METADATA_FILE).read_text())
    del meta["selfcheck"]
    (v / repository.METADATA_FILE).write_text(json.dumps(meta))
    srv = ThreadServer(settings_for(repo)).start()
    try:
        with grpc.insecure_channel(srv.address) as ch:
            stub = pb_grpc.GRPCInferenceServiceStub(ch)
            state, reason = _index(stub)[("iris", "2")]
            assert state == "UNAVAILABLE" and "no self-check rows" in reason
            assert stub.ModelInfer(infer_request("iris", np.ones((1, 4), np.float32))).model_version == "1"
    finally:
        srv.stop()


class HangingFiles(RepositoryFiles):
    """The real reader, except that reading model `stuck` blocks on a gate once `hang` is set (a hung file system)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.hang, self.entered, self.gate = threading.Event(), threading.Event(), threading.Event()

    def read_version(self, name, version):
        if name == "stuck" and self.hang.is_set():
            self.entered.set()
            self.gate.wait()  # until the test ends: a shutdown that waited for this read would never finish
        return super().read_version(name, version)


def test_a_hung_read_blocks_no_other_model_and_not_shutdown(model_repo, tmp_path):
    repo = _repo_with(model_repo, tmp_path / "models", "iris")
    copy_version(model_repo, "breast-cancer", 1, repo, "stuck", 1)
    s = settings_for(repo, model_control_mode="poll", poll_interval=0.05, grace=2.0)
    files = HangingFiles(repo, max_model_bytes=s.max_model_bytes)
    srv = ThreadServer(s, registry_factory=lambda metrics, on_change: Registry(s, metrics, on_change, files=files)).start()
    try:
        files.hang.set()
        meta = repo / "stuck" / "1" / repository.METADATA_FILE
        meta.write_text(meta.read_text() + " ")  # its files change: the next poll reads it again, and hangs
        wait_until(files.entered.is_set, "the poll to hang on stuck")
        copy_version(model_repo, "iris", 1, repo, "iris", 3)  # meanwhile a new iris version lands
        with grpc.insecure_channel(srv.address) as ch:
            stub = pb_grpc.GRPCInferenceServiceStub(ch)
            wait_until(lambda: stub.ModelInfer(infer_request("iris", np.ones((1, 4), np.float32))).model_version == "3",
                       "iris v3 to be served while stuck hangs")
        srv.stop()  # what SIGTERM does; the read stays hung until `finally`, so only a shutdown that skips it returns
        assert not srv.thread.is_alive() and srv.error is None
        assert not files.gate.is_set() and files.entered.is_set()  # stopped while the read was still hung
    finally:
        files.gate.set()
        srv.stop()


def test_sigkill_during_export_publishes_nothing_and_the_next_export_cleans_up(runs_and_repo, tmp_path):
    runs, exported = runs_and_repo
    repo = tmp_path / "models"
    staged = tmp_path / "staged"
    # The real export, held at a gate once its staging folder holds the stamped model: the kill lands there on any
    # machine, instead of racing the export to its publish.
    held = (
        "import sys, threading; import zoo.training.export as ex; real = ex._stamp_metadata\n"
        "def stamp(*a):\n"
        f"    real(*a); open({str(staged)!r}, 'w').close(); threading.Event().wait()\n"
        "ex._stamp_metadata = stamp\n"
    )
    code = "import sys; from zoo.cli import main; main(sys.argv[1:])"
    args = [sys.executable, "-c", code, "export", "iris", "--runs", str(runs), "--repository", str(repo)]
    proc = subprocess.Popen([sys.executable, "-c", held + code, *args[3:]], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_until(lambda: staged.exists() or proc.poll() is not None, "the export to stage its model", timeout_s=300)
        assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
        proc.send_signal(signal.SIGKILL)
        proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
    left = list((repo / "iris").glob(".export.*.staging"))
    assert left and repository.versions(repo, "iris") == []  # killed before publishing: nothing half-written is visible
    out = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert repository.versions(repo, "iris") == [1]
    assert not any(p.exists() for p in left)  # the killed export's staging folder was removed
