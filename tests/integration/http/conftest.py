"""Fixtures for the HTTP integration tests: the server tests' repositories, one shared server, its gRPC stub."""

from __future__ import annotations

import grpc
import pytest

from tests.integration.server.conftest import model_repo, served_repo  # noqa: F401 (the same real exports)
from tests.integration.server.server_helpers import ThreadServer, settings_for
from zoo.proto import grpc_service_pb2_grpc as pb_grpc


@pytest.fixture(scope="module")
def server(served_repo):  # noqa: F811
    """One in-process server (gRPC and HTTP) over served_repo, shared by the read-only tests of a module."""
    srv = ThreadServer(settings_for(served_repo)).start()
    yield srv
    srv.stop()


@pytest.fixture
def stub(server):
    """A GRPCInferenceService stub connected to `server`."""
    with grpc.insecure_channel(server.address) as channel:
        yield pb_grpc.GRPCInferenceServiceStub(channel)
