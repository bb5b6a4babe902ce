"""What the sync and async clients share: the channel's options, credentials, token and the model-info cache."""

from __future__ import annotations

from typing import Any

from zoo.client import codec
from zoo.client.codec import ModelInfo
from zoo.proto import grpc_service_pb2_grpc as pb_grpc


class Connection:
    """A channel to a zoo server and its stub; subclasses say whether grpc or grpc.aio makes the channel."""

    channels: Any  # the grpc or grpc.aio module

    def __init__(
        self,
        url: str,
        *,
        tls: bool = False,
        root_certificates: bytes | None = None,
        timeout: float | None = None,
        max_message_bytes: int = codec.DEFAULT_MAX_MESSAGE_BYTES,
        token: str | None = None,
        certificate_chain: bytes | None = None,
        private_key: bytes | None = None,
    ):
        """Connect to `url` (host:port); `timeout` is seconds per call, the rest configure TLS and auth."""
        self.url, self.timeout, self.max_message_bytes = url, timeout, max_message_bytes
        self._token_metadata = codec.call_metadata(token)
        options = codec.channel_options(max_message_bytes)
        creds = codec.credentials(tls, root_certificates, certificate_chain, private_key)
        self._channel = self.channels.secure_channel(url, creds, options) if creds else self.channels.insecure_channel(url, options)
        self._stub = pb_grpc.GRPCInferenceServiceStub(self._channel)
        self._info: dict[tuple[str, str], ModelInfo] = {}  # (model, version asked) -> what the server reported

    @property
    def _metadata(self) -> tuple[tuple[str, str], ...] | None:
        """What this call carries: the token, and the caller's trace context when OpenTelemetry is installed."""
        trace = codec.trace_metadata()
        if not trace:
            return self._token_metadata
        return (*(self._token_metadata or ()), *trace)
