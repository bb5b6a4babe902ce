"""The HTTP error table: the same domain errors as the gRPC table, unknown errors 500 with the fixed message."""

from __future__ import annotations

import logging

from zoo.server.errors import INTERNAL_MESSAGE, ControlDisabled, InvalidInput, ModelNotFound, ModelNotReady, Overloaded
from zoo.server.grpc_api import status as grpc_status
from zoo.server.http_api import status


def test_every_error_the_grpc_table_maps_has_an_http_status():
    assert set(status.STATUS) == set(grpc_status.STATUS)


def test_domain_errors_keep_their_message():
    assert status.status_for(InvalidInput("bad shape")) == (400, "bad shape")
    assert status.status_for(ModelNotFound("no such model")) == (404, "no such model")
    assert status.status_for(ModelNotReady("loading")) == (503, "loading")
    assert status.status_for(Overloaded("busy")) == (429, "busy")
    assert status.status_for(ControlDisabled("mode none")) == (403, "mode none")


def test_an_unexpected_error_is_500_with_the_fixed_message_and_its_traceback_only_in_the_log(caplog):
    with caplog.at_level(logging.ERROR, logger="zoo.server"):
        assert status.status_for(KeyError("/secret/path")) == (500, INTERNAL_MESSAGE)
    assert caplog.records[-1].exc_info[1].args == ("/secret/path",)
