"""The KServe v2 REST transport (with Triton's extensions) and the model browser, beside gRPC on the same loop and data plane."""

from zoo.server.http_api.server import HttpServer

__all__ = ["HttpServer"]
