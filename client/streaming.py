"""Many predictions over one ModelStreamInfer stream: requests tagged with ids, answers put back in input order.

Shared by the sync and async clients (no I/O here). The server answers a stream's requests as they finish, so
the answers are reassembled by id: batch i, chunk j travels as id "i.j".
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable, Iterator

import grpc

from zoo.client.codec import (
    ClientError,
    ModelInfo,
    Prediction,
    as_rows,
    assemble,
    decode_outputs,
    infer_request,
    rows_per_request,
    split_rows,
)
from zoo.proto import grpc_service_pb2 as pb


class StreamAssembler:
    """Requests for a sequence of row batches, and the Predictions of their answers in the batches' order."""

    def __init__(self, info: ModelInfo, max_message_bytes: int, model: str, *, threshold=None, outputs=None):
        self.info, self.model = info, model
        # Every request names the version the metadata described, so a hot swap mid-stream can't mix versions.
        self.version = info.version
        self.threshold, self.outputs = threshold, outputs
        self.rows = rows_per_request(info, max_message_bytes)
        self._chunks: deque[int] = deque()  # chunks of each batch sent, in order (appended by the sending side)
        self._answers: dict[str, pb.ModelInferResponse] = {}
        self._next = 0  # the batch to yield next
        self._lock = threading.Lock()

    def requests(self, batches: Iterable) -> Iterator[pb.ModelInferRequest]:
        """The stream's requests, batch after batch."""
        for i, X in enumerate(batches):
            yield from self.batch_requests(i, X)

    def batch_requests(self, i: int, X) -> list[pb.ModelInferRequest]:
        """The requests of batch i; its chunk count is noted before they go out."""
        chunks = split_rows(as_rows(X), self.rows)
        with self._lock:
            self._chunks.append(len(chunks))
        return [
            infer_request(
                self.model,
                chunk,
                input_name=self.info.input_name,
                version=self.version,
                threshold=self.threshold,
                outputs=self.outputs,
                request_id=f"{i}.{j}",
            )
            for j, chunk in enumerate(chunks)
        ]

    def add(self, response: pb.ModelStreamInferResponse) -> list[Prediction]:
        """Take one answer; returns the predictions it completed, in order. An error answer raises ClientError."""
        if response.error_message:
            rid = response.infer_response.id
            where = f"batch {rid.split('.')[0]}: " if rid else ""
            raise ClientError(grpc.StatusCode.UNKNOWN, where + response.error_message)
        self._answers[response.infer_response.id] = response.infer_response
        done = []
        while True:
            with self._lock:
                if not self._chunks:
                    break
                n = self._chunks[0]
            ids = [f"{self._next}.{j}" for j in range(n)]
            if not all(k in self._answers for k in ids):
                break
            parts = [decode_outputs(self._answers.pop(k)) for k in ids]
            done.append(assemble(self.model, self.version, self.info.class_names, parts))
            with self._lock:
                self._chunks.popleft()
            self._next += 1
        return done
