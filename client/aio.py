"""AsyncZooClient: the asyncio (grpc.aio) client, same API as ZooClient with `await`."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from zoo.client import codec
from zoo.client.codec import ModelInfo, Prediction
from zoo.client.connection import Connection
from zoo.client.streaming import StreamAssembler
from zoo.proto import grpc_service_pb2 as pb


class AsyncZooClient(Connection):
    """asyncio client of a zoo (KServe v2 gRPC) server; create it inside the running loop."""

    channels = grpc.aio

    async def _call(self, method: str, request):
        try:
            return await getattr(self._stub, method)(request, timeout=self.timeout, metadata=self._metadata)
        except grpc.RpcError as e:
            raise codec.client_error(e) from None

    async def is_live(self) -> bool:
        """Whether the server process answers."""
        return (await self._call("ServerLive", pb.ServerLiveRequest())).live

    async def is_ready(self) -> bool:
        """Whether the server is ready to serve."""
        return (await self._call("ServerReady", pb.ServerReadyRequest())).ready

    async def model_ready(self, name: str, version: str | int | None = None) -> bool:
        """Whether the model (version) can serve now; ClientError NOT_FOUND for an unknown one."""
        return (await self._call("ModelReady", pb.ModelReadyRequest(name=name, version=codec.version_str(version)))).ready

    async def metadata(self, name: str, version: str | int | None = None) -> ModelInfo:
        """Features, classes, task and tensors of a model version (the default version when None)."""
        v = codec.version_str(version)
        md = await self._call("ModelMetadata", pb.ModelMetadataRequest(name=name, version=v))
        cfg = await self._call("ModelConfig", pb.ModelConfigRequest(name=name, version=v))
        info = self._info[(name, v)] = codec.model_info(md, cfg)  # predict() reuses it for sizing and class names
        return info

    async def predict(
        self, model: str, X, threshold: codec.Threshold | None = None, version: str | int | None = None, outputs: list[str] | None = None
    ) -> Prediction:
        """Predict rows X ([F] or [N, F]); inputs over the message cap go as several requests, answered in order."""
        plan = codec.predict_plan(self._info, self.max_message_bytes, model, X, threshold=threshold, version=version, outputs=outputs)
        reply = None
        while True:
            try:
                op = plan.send(reply)
            except StopIteration as done:
                return done.value
            reply = await (self.metadata(op[1], op[2]) if op[0] == "info" else self._call("ModelInfer", op[1]))

    async def predict_stream(
        self,
        model: str,
        batches,
        threshold: codec.Threshold | None = None,
        version: str | int | None = None,
        outputs: list[str] | None = None,
    ) -> AsyncIterator[Prediction]:
        """Predict every batch of `batches` (an iterable or async iterable of rows) over one stream, in order."""
        info = await self.metadata(model, version)
        stream = StreamAssembler(info, self.max_message_bytes, model, threshold=threshold, outputs=outputs)

        async def source():
            if hasattr(batches, "__aiter__"):
                i = 0
                async for X in batches:
                    for request in stream.batch_requests(i, X):
                        yield request
                    i += 1
            else:
                for request in stream.requests(batches):
                    yield request

        call = self._stub.ModelStreamInfer(source(), metadata=self._metadata)
        try:
            async for response in call:
                for pred in stream.add(response):
                    yield pred
        except grpc.RpcError as e:
            raise codec.client_error(e) from None
        finally:
            call.cancel()

    async def close(self) -> None:
        """Close the channel."""
        await self._channel.close()

    async def __aenter__(self) -> AsyncZooClient:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()
