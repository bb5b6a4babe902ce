"""Domain errors of the server; grpc_errors.py maps them to gRPC status codes at the edge."""

from __future__ import annotations


class ServerError(Exception):
    """Base of the errors whose message is safe to send to the client."""


class InvalidInput(ServerError):
    """The request is malformed: wrong tensor name, datatype, shape, byte count, value or parameter."""


class ModelNotFound(ServerError):
    """No model (or version) of that name exists in the repository."""


class ModelNotReady(ServerError):
    """The model exists but cannot serve now (failed to load, unloaded, or shutting down)."""


class Overloaded(ServerError):
    """The model's queue is full; the client should back off and retry."""
