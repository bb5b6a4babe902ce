"""Limits of the gRPC transport: streams per client address (the size of an answer is checked in server/inference.py)."""

from __future__ import annotations

from zoo.server.errors import Overloaded


def peer_address(peer: str) -> str:
    """The client address of a gRPC peer string, without its port ('ipv4:10.0.0.7:5123' -> 'ipv4:10.0.0.7')."""
    if peer.startswith(("ipv4:", "ipv6:")):
        return peer.rsplit(":", 1)[0]
    return peer  # a Unix socket, or a form we do not know: taken whole


class PeerStreams:
    """Open streams per client address, so that one address cannot take every RPC slot with streams."""

    def __init__(self, limit: int):
        self.limit = limit
        self._open: dict[str, int] = {}

    def enter(self, peer: str) -> str:
        """Count a new stream of `peer` and return its address; Overloaded when that address holds `limit` already."""
        address = peer_address(peer)
        held = self._open.get(address, 0)
        if held >= self.limit:
            raise Overloaded(
                f"this client address holds {held} open streams, the most one address may (--max-streams-per-peer); "
                "close idle streams or send on the ones open"
            )
        self._open[address] = held + 1
        return address

    def leave(self, address: str) -> None:
        """Uncount a stream that ended."""
        left = self._open[address] - 1
        if left:
            self._open[address] = left
        else:
            del self._open[address]  # the table only holds addresses with streams open
