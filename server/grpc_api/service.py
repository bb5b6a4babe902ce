"""The gRPC method table: each RPC with a deserializer that never raises and the one error edge.

Written instead of the generated add_..._to_server so that a body that does not parse is answered
INVALID_ARGUMENT with one log line (the generated deserializers raise, and grpc answers UNKNOWN with a traceback
per request), and so that every unary RPC maps domain errors to status codes in one place.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

import grpc
from google.protobuf.message import DecodeError

from zoo.proto import grpc_service_pb2 as pb
from zoo.server.errors import InvalidInput
from zoo.server.grpc_api.status import status_for

log = logging.getLogger("zoo.server")
SERVICE = pb.DESCRIPTOR.services_by_name["GRPCInferenceService"]


@dataclass
class BadMessage:
    """What a request that did not parse turns into; the RPC answers it INVALID_ARGUMENT."""

    type_name: str
    reason: str
    model_name: str = ""
    model_version: str = ""
    id: str = ""

    def error(self) -> InvalidInput:
        """The error to answer with."""
        return InvalidInput(f"the request body is not a valid {self.type_name} message ({self.reason})")


def _parser(message_cls):
    name = message_cls.DESCRIPTOR.full_name

    def parse(data: bytes):
        try:
            return message_cls.FromString(data)
        except (DecodeError, ValueError) as e:
            log.warning("refused a %s that does not parse: %s", name, e)
            return BadMessage(name, str(e) or "malformed protobuf")

    return parse


def _unary(method):
    @functools.wraps(method)
    async def handler(request, context):
        try:
            if request.__class__ is BadMessage:
                raise request.error()
            return await method(request, context)
        except Exception as e:
            code, message = status_for(e)
            await context.abort(code, message)

    return handler


def handler(servicer) -> grpc.GenericRpcHandler:
    """The GRPCInferenceService handler for `servicer`: the RPCs it implements (others answer UNIMPLEMENTED)."""
    methods = {}
    for m in SERVICE.methods:
        impl = getattr(servicer, m.name, None)
        if impl is None:
            continue
        request_cls = getattr(pb, m.input_type.name)
        response_cls = getattr(pb, m.output_type.name)
        if m.client_streaming or m.server_streaming:
            methods[m.name] = grpc.stream_stream_rpc_method_handler(
                impl, request_deserializer=_parser(request_cls), response_serializer=response_cls.SerializeToString
            )
        else:
            methods[m.name] = grpc.unary_unary_rpc_method_handler(
                _unary(impl), request_deserializer=_parser(request_cls), response_serializer=response_cls.SerializeToString
            )
    return grpc.method_handlers_generic_handler(SERVICE.full_name, methods)
