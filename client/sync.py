"""ZooClient: the blocking client over one gRPC channel."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import grpc

from zoo.client import codec
from zoo.client.codec import ModelInfo, Prediction
from zoo.client.connection import Connection
from zoo.client.streaming import StreamAssembler
from zoo.proto import grpc_service_pb2 as pb


class ZooClient(Connection):
    """Blocking client of a zoo (KServe v2 gRPC) server; every failed call raises ClientError."""

    channels = grpc

    def _call(self, method: str, request):
        try:
            return getattr(self._stub, method)(request, timeout=self.timeout, metadata=self._metadata)
        except grpc.RpcError as e:
            raise codec.client_error(e) from None

    def is_live(self) -> bool:
        """Whether the server process answers."""
        return self._call("ServerLive", pb.ServerLiveRequest()).live

    def is_ready(self) -> bool:
        """Whether the server is ready to serve."""
        return self._call("ServerReady", pb.ServerReadyRequest()).ready

    def model_ready(self, name: str, version: str | int | None = None) -> bool:
        """Whether the model (version) can serve now; ClientError NOT_FOUND for an unknown one."""
        return self._call("ModelReady", pb.ModelReadyRequest(name=name, version=codec.version_str(version))).ready

    def metadata(self, name: str, version: str | int | None = None) -> ModelInfo:
        """Features, classes, task and tensors of a model version (the default version when None)."""
        v = codec.version_str(version)
        md = self._call("ModelMetadata", pb.ModelMetadataRequest(name=name, version=v))
        cfg = self._call("ModelConfig", pb.ModelConfigRequest(name=name, version=v))
        info = self._info[(name, v)] = codec.model_info(md, cfg)  # predict() reuses it for sizing and class names
        return info

    def predict(
        self, model: str, X, threshold: codec.Threshold | None = None, version: str | int | None = None, outputs: list[str] | None = None
    ) -> Prediction:
        """Predict rows X ([F] or [N, F]); inputs over the message cap go as several requests, answered in order."""
        x = codec.as_rows(X)
        info = self._info.get((model, codec.version_str(version))) or self.metadata(model, version)
        if len(x) > codec.rows_per_request(info, self.max_message_bytes):  # several chunks: pipeline them on a stream
            (pred,) = self.predict_many(model, [x], threshold=threshold, version=version, outputs=outputs)
            return pred
        plan = codec.predict_plan(self._info, self.max_message_bytes, model, x, threshold=threshold, version=version, outputs=outputs)
        reply = None
        while True:
            try:
                op = plan.send(reply)
            except StopIteration as done:
                return done.value
            reply = self.metadata(op[1], op[2]) if op[0] == "info" else self._call("ModelInfer", op[1])

    def predict_many(
        self,
        model: str,
        batches: Iterable,
        threshold: codec.Threshold | None = None,
        version: str | int | None = None,
        outputs: list[str] | None = None,
    ) -> Iterator[Prediction]:
        """Predict every batch of rows of `batches` over one stream, yielding their Predictions in order.

        Requests are pipelined: the next batches are on their way while earlier ones compute, and the server
        batches them with each other and with other clients' requests.
        """
        info = self.metadata(model, version)
        stream = StreamAssembler(info, self.max_message_bytes, model, threshold=threshold, outputs=outputs)
        try:
            for response in self._stub.ModelStreamInfer(stream.requests(batches), metadata=self._metadata):
                yield from stream.add(response)
        except grpc.RpcError as e:
            raise codec.client_error(e) from None

    def close(self) -> None:
        """Close the channel."""
        self._channel.close()

    def __enter__(self) -> ZooClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
