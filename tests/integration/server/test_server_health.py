"""grpc.health.v1 with a token set: the server's own (unnamed) check stays open for probes; a check naming a model
tells whether that model exists, so it needs the token like every other RPC."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from tests.integration.server.server_helpers import ThreadServer, settings_for

TOKEN = "another-long-random-token-9876543210"
AUTH = (("authorization", f"Bearer {TOKEN}"),)
SERVING = health_pb2.HealthCheckResponse.SERVING


@pytest.fixture(scope="module")
def guarded(model_repo, tmp_path_factory):
    token_file = tmp_path_factory.mktemp("secrets") / "token"
    token_file.write_text(TOKEN + "\n")
    srv = ThreadServer(settings_for(model_repo, auth_token_file=str(token_file))).start()
    yield srv
    srv.stop()


def check(srv, service: str, metadata=None):
    """One Check; its status, or the error code."""
    with grpc.insecure_channel(srv.address) as ch:
        try:
            return health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service=service), metadata=metadata, timeout=30).status
        except grpc.RpcError as e:
            return e.code()


def first_watch(srv, service: str, metadata=None):
    """The first answer of a Watch, or the error code."""
    with grpc.insecure_channel(srv.address) as ch:
        answers = health_pb2_grpc.HealthStub(ch).Watch(health_pb2.HealthCheckRequest(service=service), metadata=metadata, timeout=30)
        try:
            return next(answers).status
        except grpc.RpcError as e:
            return e.code()
        finally:
            answers.cancel()


def test_the_unnamed_health_check_is_open_without_the_token(guarded):
    assert check(guarded, "") == SERVING
    assert first_watch(guarded, "") == SERVING


@pytest.mark.parametrize("service", ["iris", "no-such-model"])
def test_a_named_health_check_needs_the_token_whether_or_not_the_model_exists(guarded, service):
    assert check(guarded, service) == grpc.StatusCode.UNAUTHENTICATED
    assert check(guarded, service, (("authorization", "Bearer wrong"),)) == grpc.StatusCode.UNAUTHENTICATED
    assert first_watch(guarded, service) == grpc.StatusCode.UNAUTHENTICATED


def test_a_named_health_check_with_the_token_answers(guarded):
    assert check(guarded, "iris", AUTH) == SERVING
    assert first_watch(guarded, "iris", AUTH) == SERVING
    assert check(guarded, "no-such-model", AUTH) == grpc.StatusCode.NOT_FOUND


def test_without_a_token_set_named_checks_stay_open(server):
    assert check(server, "iris") == SERVING
