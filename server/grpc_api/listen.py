"""The gRPC port: channel arguments (limits, keepalive), TLS credentials, and binding with a clear error."""

from __future__ import annotations

import grpc

from zoo.server.settings import ServerSettings


class PortInUse(OSError):
    """A port the server must listen on is taken; the message names the flag that sets it."""


def grpc_options(s: ServerSettings) -> list[tuple[str, int]]:
    """Channel arguments: message caps, resource limits and keepalive enforcement."""
    return [
        ("grpc.max_send_message_length", s.max_message_bytes),
        ("grpc.max_receive_message_length", s.max_message_bytes),
        # A second server on the same port must fail, not share it; only a supervisor's workers share theirs.
        ("grpc.so_reuseport", 1 if s.reuse_port else 0),
        ("grpc.max_concurrent_streams", s.max_streams_per_connection),
        ("grpc.max_connection_idle_ms", int(s.connection_idle_timeout * 1000)),
        ("grpc.keepalive_time_ms", int(s.keepalive_time * 1000)),
        ("grpc.keepalive_timeout_ms", 20_000),
        # Clients may ping at most every 10 s, and not at all with no RPC in flight: a ping flood is cut off.
        ("grpc.http2.min_recv_ping_interval_without_data_ms", 10_000),
        ("grpc.http2.max_ping_strikes", 2),
        ("grpc.keepalive_permit_without_calls", 0),
    ]


def credentials(s: ServerSettings) -> grpc.ServerCredentials | None:
    """TLS credentials from --tls-cert/--tls-key (and --tls-client-ca for mTLS); None: plain text."""
    if not s.tls_cert:
        return None
    with open(s.tls_key, "rb") as k, open(s.tls_cert, "rb") as c:
        key, cert = k.read(), c.read()
    if not s.tls_client_ca:
        return grpc.ssl_server_credentials([(key, cert)])
    with open(s.tls_client_ca, "rb") as f:
        ca = f.read()
    return grpc.ssl_server_credentials([(key, cert)], root_certificates=ca, require_client_auth=True)


def bind(server: grpc.aio.Server, host: str, port: int, creds: grpc.ServerCredentials | None) -> int:
    """Bind the gRPC port and return the port really bound (0 picks a free one); PortInUse names --port."""
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        bound = server.add_secure_port(address, creds) if creds else server.add_insecure_port(address)
    except RuntimeError:
        bound = 0
    if not bound:
        raise PortInUse(f"cannot listen on {address} (--port {port}): the port is in use or the address is not local")
    return bound
