"""Whether a peer is on this host: shared memory (and nothing else) is only for local clients."""

from __future__ import annotations

import functools
import ipaddress
from urllib.parse import unquote


@functools.lru_cache(maxsize=4096)  # asked on every HTTP inference; ipaddress parses in Python (3 us a call)
def is_local(host: str | None) -> bool:
    """Whether a peer address is this host: loopback over IPv4 or IPv6 (IPv4-mapped too), or a Unix socket."""
    if not host:
        return False
    if host.startswith("unix:"):
        return True
    try:
        addr = ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return addr.is_loopback


def is_local_grpc_peer(peer: str) -> bool:
    """Whether a gRPC peer string ('ipv4:127.0.0.1:5', 'ipv6:%5B::1%5D:5', 'unix:/path') names this host."""
    peer = unquote(peer)  # gRPC percent-encodes the brackets of an IPv6 peer
    if peer.startswith(("unix:", "unix-abstract:")):
        return True
    scheme, _, rest = peer.partition(":")
    if scheme == "ipv4":
        return is_local(rest.rsplit(":", 1)[0])
    if scheme == "ipv6" and rest.startswith("["):
        return is_local(rest[1 : rest.find("]")])
    return False
