"""Domain errors of the server; the transports (grpc_api/status.py, http_api) map them to status codes at the edge."""

from __future__ import annotations

# What clients get for an error that is not a ServerError: the traceback goes to the log only.
INTERNAL_MESSAGE = "internal server error; the server log has the details"


class ServerError(Exception):
    """Base of the errors whose message is safe to send to the client."""


class InvalidInput(ServerError):
    """The request is malformed: wrong tensor name, datatype, shape, byte count, value, parameter or name."""


class NotFound(ServerError):
    """The thing named does not exist (a model, a version, a shared-memory region)."""


class ModelNotFound(NotFound):
    """No model (or version) of that name is known to the server."""


class RegionExists(ServerError):
    """A shared-memory region of that name is registered already."""


class NotAllowed(ServerError):
    """The caller may not do this (e.g. register shared memory from another host)."""


class ModelNotReady(ServerError):
    """The model exists but cannot serve now (failed to load, unloaded, or shutting down)."""


class Overloaded(ServerError):
    """The model's queue is full; the client should back off and retry."""


class ControlDisabled(ServerError):
    """A repository operation that the server's model control mode does not allow."""


def kind(exc: BaseException) -> str:
    """A transport-neutral name of an error for metrics labels: the domain class, or 'Internal'."""
    return type(exc).__name__ if isinstance(exc, ServerError) else "Internal"
