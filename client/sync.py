"""ZooClient: the blocking client over one gRPC channel."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import grpc

from zoo.client import codec
from zoo.client.codec import ModelInfo, Prediction
from zoo.client.streaming import StreamAssembler
from zoo.proto import grpc_service_pb2 as pb
from zoo.proto import grpc_service_pb2_grpc as pb_grpc


class ZooClient:
    """Blocking client of a zoo (KServe v2 gRPC) server; every failed call raises ClientError."""

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
        self.url, self.timeout, self.max_message_bytes = url, timeout, max_message_bytes
        self._metadata = codec.call_metadata(token)
        options = codec.channel_options(max_message_bytes)
        creds = codec.credentials(tls, root_certificates, certificate_chain, private_key)
        self._channel = grpc.secure_channel(url, creds, options) if creds else grpc.insecure_channel(url, options)
        self._stub = pb_grpc.GRPCInferenceServiceStub(self._channel)
        self._info: dict[tuple[str, str], ModelInfo] = {}

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
        self, model: str, X, threshold: float | None = None, version: str | int | None = None, outputs: list[str] | None = None
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
        threshold: float | None = None,
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
