"""GRPCInferenceService: each RPC decodes its message, asks the data plane, and encodes the answer.

Domain errors raised here become status codes in service.py, the one place that maps them.
"""

from __future__ import annotations

from zoo.core import contract
from zoo.core.repository import shown
from zoo.proto import grpc_service_pb2 as pb
from zoo.server import statistics
from zoo.server.dataplane import DataPlane
from zoo.server.errors import InvalidInput, NotFound
from zoo.server.grpc_api import codec
from zoo.server.grpc_api.limits import PeerStreams
from zoo.server.grpc_api.stream import StreamLimits, serve_stream
from zoo.server.locality import is_local_grpc_peer
from zoo.server.properties import model_properties


class InferenceServicer:
    """Every RPC of GRPCInferenceService that zoo implements."""

    def __init__(
        self,
        plane: DataPlane,
        *,
        stream_limits: StreamLimits | None = None,
        streams_per_peer: int = 1024,
        max_message_bytes: int = 64 * 1024 * 1024,
        worker: int | None = None,
    ):
        self.plane = plane
        self.worker = worker
        self.stream_limits = stream_limits or StreamLimits()
        self.peers = PeerStreams(streams_per_peer)
        self.max_message_bytes = max_message_bytes

    # health

    async def ServerLive(self, request, context):
        return pb.ServerLiveResponse(live=True)

    async def ServerReady(self, request, context):
        return pb.ServerReadyResponse(ready=self.plane.ready())

    async def ModelReady(self, request, context):
        return pb.ModelReadyResponse(ready=await self.plane.model_ready(request.name, request.version))

    # metadata

    async def ServerMetadata(self, request, context):
        if self.worker is not None:  # which process answered: tests and operators can tell workers apart
            context.set_trailing_metadata((("zoo-worker", str(self.worker)),))
        name, version, extensions = self.plane.server_metadata()
        return pb.ServerMetadataResponse(name=name, version=version, extensions=extensions)

    async def ModelMetadata(self, request, context):
        lv = await self.plane.lookup(request.name, request.version)
        resp = pb.ModelMetadataResponse(
            name=request.name,
            versions=self.plane.versions(request.name),
            platform=contract.PLATFORM,
            properties=model_properties(lv.card),
        )
        for spec in (lv.card.input,):
            resp.inputs.add(name=spec.name, datatype=spec.datatype, shape=spec.shape)
        for spec in lv.card.outputs:
            resp.outputs.add(name=spec.name, datatype=spec.datatype, shape=spec.shape)
        return resp

    async def ModelConfig(self, request, context):
        return pb.ModelConfigResponse(config=self.plane.model_config(await self.plane.lookup(request.name, request.version)))

    async def ModelStatistics(self, request, context):
        return statistics.message(self.plane.statistics(request.name, request.version))

    # repository

    async def RepositoryIndex(self, request, context):
        resp = pb.RepositoryIndexResponse()
        for name, version, state, reason in await self.plane.index(request.ready):
            resp.models.add(name=name, version=version, state=state, reason=reason)
        return resp

    async def RepositoryModelLoad(self, request, context):
        await self.plane.load(request.model_name)
        return pb.RepositoryModelLoadResponse()

    async def RepositoryModelUnload(self, request, context):
        await self.plane.unload(request.model_name)
        return pb.RepositoryModelUnloadResponse()

    # inference

    async def ModelInfer(self, request, context):
        shm = self.plane.shm.for_peer(_local(context.peer()))  # a tensor naming a region: this host only
        decoded = codec.decode(
            request, shm, max_answer_bytes=self.max_message_bytes, trace=codec.trace_context(context.invocation_metadata())
        )
        return codec.encode(await self.plane.infer(decoded), shm, decoded.output_regions)

    # system shared memory (clients on this host only)

    async def SystemSharedMemoryRegister(self, request, context):
        self.plane.shm.guard(_local(context.peer()))
        self.plane.register_region(request.name, request.key, request.offset, request.byte_size)
        return pb.SystemSharedMemoryRegisterResponse()

    async def SystemSharedMemoryStatus(self, request, context):
        self.plane.shm.guard(_local(context.peer()))
        resp = pb.SystemSharedMemoryStatusResponse()
        for name, key, offset, size in self.plane.shm.status(request.name):
            resp.regions[name].CopyFrom(pb.SystemSharedMemoryStatusResponse.RegionStatus(name=name, key=key, offset=offset, byte_size=size))
        return resp

    async def SystemSharedMemoryUnregister(self, request, context):
        self.plane.shm.guard(_local(context.peer()))
        self.plane.unregister_region(request.name)
        return pb.SystemSharedMemoryUnregisterResponse()

    # CUDA shared memory: none is ever registered, so status is empty and unregistering all succeeds (clients
    # such as perf_analyzer clean both kinds up); registering one is refused.

    async def CudaSharedMemoryStatus(self, request, context):
        if request.name:
            raise NotFound(f"no CUDA shared-memory region {shown(request.name)} is registered")
        return pb.CudaSharedMemoryStatusResponse()

    async def CudaSharedMemoryRegister(self, request, context):
        raise InvalidInput("this server has no CUDA shared memory; use system shared memory (SystemSharedMemoryRegister)")

    async def CudaSharedMemoryUnregister(self, request, context):
        if request.name:
            raise NotFound(f"no CUDA shared-memory region {shown(request.name)} is registered")
        return pb.CudaSharedMemoryUnregisterResponse()

    async def ModelStreamInfer(self, request_iterator, context):
        """Requests decoded and queued as they arrive, answered as they finish (grpc_api/stream.py)."""
        shm = self.plane.shm.for_peer(_local(context.peer()))  # a tensor naming a region: this host only
        trace = codec.trace_context(context.invocation_metadata())  # one stream, one caller's context

        def decode(request):
            return codec.decode(request, shm, max_answer_bytes=self.max_message_bytes, trace=trace)

        async for item in serve_stream(self.plane, request_iterator, context, self.stream_limits, self.peers, decode, shm):
            yield item


def _local(peer: str) -> bool:
    """Whether a gRPC peer string names this host (loopback over IPv4 or IPv6, or a Unix socket)."""
    return is_local_grpc_peer(peer)
