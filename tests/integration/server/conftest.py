"""Fixtures for the server integration tests: a repository of real exports and running servers.

Every test reads model facts from metadata.json (via zoo.core.repository), never from constants here.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import grpc
import pytest
from tests.integration.server.server_helpers import ThreadServer, copy_version, settings_for

from zoo.core import repository
from zoo.proto import grpc_service_pb2_grpc as pb_grpc


@pytest.fixture(scope="session")
def model_repo(exported_repo, tmp_path_factory) -> Path:
    """Real exports: iris (multiclass, v1 and v2, trained with different seeds) and breast-cancer (binary, v1)."""
    root = tmp_path_factory.mktemp("models") / "models"
    shutil.copytree(exported_repo, root)
    return root


@pytest.fixture(scope="session")
def served_repo(model_repo, tmp_path_factory) -> Path:
    """model_repo plus a corrupt model (`broken`: its bytes no longer match the recorded SHA-256)."""
    root = tmp_path_factory.mktemp("served") / "models"
    shutil.copytree(model_repo, root)
    copy_version(model_repo, "iris", 1, root, "broken", 1)
    path = root / "broken" / "1" / repository.MODEL_FILE
    path.write_bytes(path.read_bytes()[:-16] + b"\0" * 16)
    return root


@pytest.fixture(scope="module")
def server(served_repo):
    """One in-process server over served_repo, shared by the read-only tests of a module."""
    srv = ThreadServer(settings_for(served_repo, max_queue_delay_us=2000)).start()
    yield srv
    srv.stop()


@pytest.fixture
def stub(server):
    """A GRPCInferenceService stub connected to `server`."""
    with grpc.insecure_channel(server.address) as channel:
        yield pb_grpc.GRPCInferenceServiceStub(channel)
