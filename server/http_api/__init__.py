"""The HTTP/REST transport of the KServe v2 protocol (placeholder until the HTTP server lands)."""

from __future__ import annotations


class HttpServer:
    """Placeholder: binding fails with a clear message until the HTTP transport is implemented."""

    port: int

    @classmethod
    async def bind(cls, plane, settings) -> "HttpServer":
        raise OSError(95, "the HTTP transport is not implemented yet: run with --http-port -1")

    async def start(self) -> None:
        """Start accepting connections."""

    async def close(self, grace: float) -> None:
        """Stop; let in-flight requests finish within grace seconds."""
