"""Limits the gRPC transport checks before the model runs: the size of a response, and streams per client address."""

from __future__ import annotations

import math

from zoo.core.contract import ModelCard
from zoo.server.errors import InvalidInput, Overloaded
from zoo.server.inference import InferenceCall

# Room for what a response holds besides its tensors: names, datatypes, shapes, the id and parameters.
ENVELOPE_BYTES = 4096


def response_bytes(call: InferenceCall, card: ModelCard, in_shared_memory=()) -> int:
    """An upper bound of the ModelInferResponse's size, known from the row count before the model runs."""
    rows = len(call.rows)
    tensors = sum(
        rows * spec.dtype.itemsize * math.prod(spec.shape[1:])
        for spec in card.outputs
        if spec.name in call.outputs and spec.name not in in_shared_memory
    )
    return tensors + ENVELOPE_BYTES + len(call.request_id)


def check_response_size(call: InferenceCall, card: ModelCard, limit: int, in_shared_memory=()) -> None:
    """InvalidInput, naming --max-message-bytes and the ways around it, when the answer could not be sent."""
    size = response_bytes(call, card, in_shared_memory)
    if size > limit:
        raise InvalidInput(
            f"the response to {len(call.rows)} rows would take about {size} bytes, above this server's "
            f"--max-message-bytes of {limit}: send the rows in several requests (ModelStreamInfer pipelines them on one "
            "stream), ask only for the outputs you need, or have the outputs written to system shared memory"
        )


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
