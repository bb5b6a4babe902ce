"""The HTTP/REST transport of the KServe v2 protocol (with Triton's extensions) beside gRPC, on the same loop and data plane."""

from zoo.server.http_api.server import HttpServer

__all__ = ["HttpServer"]
