"""Listening sockets for the HTTP and metrics ports: `localhost` means loopback over IPv4 and IPv6 (both on one port,
as gRPC binds it); any other host is one socket."""

from __future__ import annotations

import errno
import socket

LOCALHOST = "localhost"


def listen(host: str, port: int, *, reuse_port: bool = False, backlog: int = 128) -> list[socket.socket]:
    """Sockets listening on host:port (port 0: a free one, the same for every socket of `localhost`)."""
    if host != LOCALHOST:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        return [socket.create_server((host, port), family=family, backlog=backlog, reuse_port=reuse_port)]
    first = socket.create_server(("127.0.0.1", port), backlog=backlog, reuse_port=reuse_port)
    try:
        second = socket.create_server(("::1", first.getsockname()[1]), family=socket.AF_INET6, backlog=backlog, reuse_port=reuse_port)
    except OSError as e:
        if e.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):  # a machine without IPv6 loopback: IPv4 is all
            return [first]
        first.close()
        raise
    return [first, second]


def where_to_look(host: str, http_port: int | None) -> str:
    """The start-up line saying who can reach the server and where a person opens the model pages."""
    loopback = host in (LOCALHOST, "127.0.0.1", "::1")
    reach = (
        "loopback only (this machine): --host 0.0.0.0 opens it to other machines"
        if loopback
        else f"listening on {host}: other machines can reach it"
    )
    if http_port is None:
        return f"{reach}; the HTTP port is off (--http-port -1), so no model pages"
    shown = "[::1]" if host == "::1" else "127.0.0.1" if loopback or host in ("0.0.0.0", "::", "") else host
    return f"{reach}; model pages at http://{shown}:{http_port}/"
