"""The one table from domain errors to gRPC status codes, and the fixed INTERNAL answer for everything else."""

from __future__ import annotations

import logging

import grpc
import pytest

from zoo.server.errors import (
    ControlDisabled, InvalidInput, ModelNotFound, ModelNotReady, NotAllowed, NotFound, Overloaded, RegionExists, ServerError,
)
from zoo.server.grpc_api import status
from zoo.server.grpc_api.status import INTERNAL_MESSAGE, code_for, status_for
from zoo.server.loader import LoadTimeout
from zoo.server.runtime import GpuRequired

DOMAIN = [
    (InvalidInput, grpc.StatusCode.INVALID_ARGUMENT),
    (NotFound, grpc.StatusCode.NOT_FOUND),
    (ModelNotReady, grpc.StatusCode.UNAVAILABLE),
    (Overloaded, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (ControlDisabled, grpc.StatusCode.FAILED_PRECONDITION),
    (RegionExists, grpc.StatusCode.ALREADY_EXISTS),
    (NotAllowed, grpc.StatusCode.PERMISSION_DENIED),
]
SECRET = "/srv/secret/path token=hunter2"  # what an unexpected error might hold: must never reach the client


def raised(exc: BaseException) -> BaseException:
    """`exc` after it was really raised, so it carries a traceback."""
    try:
        raise exc
    except BaseException as e:
        return e


def test_every_domain_error_class_is_in_the_table():
    assert {kind for kind, _ in DOMAIN} == set(status.STATUS)
    assert set(ServerError.__subclasses__()) == set(status.STATUS)  # a new domain error needs its row
    assert code_for(ModelNotFound("x")) == grpc.StatusCode.NOT_FOUND  # a subclass takes its parent's row


@pytest.mark.parametrize("kind, code", DOMAIN, ids=[k.__name__ for k, _ in DOMAIN])
def test_a_domain_error_maps_to_its_code_with_its_own_message(kind, code, caplog):
    with caplog.at_level(logging.DEBUG, logger="zoo.server"):
        assert status_for(kind("model 'iris' says why")) == (code, "model 'iris' says why")
    assert not caplog.records  # an expected error is the client's news, not the server log's


@pytest.mark.parametrize("kind, code", DOMAIN, ids=[k.__name__ for k, _ in DOMAIN])
def test_a_subclass_of_a_domain_error_maps_like_its_base(kind, code):
    sub = type(f"Special{kind.__name__}", (kind,), {})
    assert code_for(sub("x")) == code


@pytest.mark.parametrize("exc", [
    RuntimeError(SECRET),
    KeyError(SECRET),
    ValueError(SECRET),
    LoadTimeout(SECRET),
    GpuRequired(SECRET),
    ServerError(SECRET),  # the base class alone is in no row of the table
], ids=lambda e: type(e).__name__)
def test_an_unknown_error_is_internal_with_the_fixed_message_and_its_traceback_logged(exc, caplog):
    exc = raised(exc)
    with caplog.at_level(logging.ERROR, logger="zoo.server"):
        code, message = status_for(exc)
    assert (code, message) == (grpc.StatusCode.INTERNAL, INTERNAL_MESSAGE)
    assert "hunter2" not in message and "secret" not in message
    [record] = caplog.records
    assert record.levelno == logging.ERROR and record.exc_info[1] is exc
    assert "Traceback" in caplog.text and "raise exc" in caplog.text and "hunter2" in caplog.text  # the log has it all
