"""GRPCInferenceService: each RPC decodes its message, asks the data plane, and encodes the answer.

Domain errors raised here become status codes in service.py, the one place that maps them.
"""

from __future__ import annotations

import asyncio
import functools

import grpc

from zoo.core import contract
from zoo.core.repository import shown
from zoo.proto import grpc_service_pb2 as pb
from zoo.server import statistics
from zoo.server.dataplane import DataPlane
from zoo.server.errors import InvalidInput, NotFound
from zoo.server.grpc_api import codec
from zoo.server.grpc_api.service import BadMessage
from zoo.server.grpc_api.status import status_for
from zoo.server.inference import InferenceCall
from zoo.server.shm import is_local_grpc_peer

STREAM_WINDOW = 512  # requests of one stream decoded and queued before its answers are read


class InferenceServicer:
    """Every RPC of GRPCInferenceService that zoo implements."""

    def __init__(self, plane: DataPlane, *, stream_idle_timeout: float = 300.0, worker: int | None = None):
        self.plane = plane
        self.worker = worker
        self.stream_idle_timeout = stream_idle_timeout

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
        resp = pb.ModelMetadataResponse(name=request.name, versions=self.plane.versions(request.name), platform=contract.PLATFORM)
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
        if isinstance(request, BadMessage):
            raise request.error()
        shm = self.plane.shm.for_peer(_local(context.peer()))  # a tensor naming a region: this host only
        call: InferenceCall | None = None

        def decode(card):
            nonlocal call
            call = codec.decode(request, card, shm)
            return call

        result = await self.plane.infer(request.model_name, request.model_version, decode)
        assert call is not None  # decode ran: infer() succeeded
        return codec.encode(result, shm, call.extra.get(codec.SHM_OUTPUTS))

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
        """Each request is decoded and queued as it arrives; answers go back as they finish, each with its id.

        Requests of one stream therefore batch with each other and with everyone else's. An error answers
        only its own request. A stream that sends nothing for stream_idle_timeout seconds is closed. No task is
        made per request: the batcher's future calls back with the answer.
        """
        loop = asyncio.get_running_loop()
        answers: asyncio.Queue = asyncio.Queue()
        window = asyncio.Semaphore(STREAM_WINDOW)
        drained = asyncio.Event()
        done = object()
        state = {"open": 0, "last": loop.time(), "idle": False, "reading": True}
        shm = self.plane.shm.for_peer(_local(context.peer()))  # a tensor naming a region: this host only

        def reply(resp) -> None:
            window.release()
            answers.put_nowait(resp)
            state["open"] -= 1
            if not state["open"] and not state["reading"]:
                drained.set()

        def failure(request, e: Exception):
            _, message = status_for(e)
            echo = pb.ModelInferResponse(model_name=request.model_name, model_version=request.model_version, id=request.id)
            return pb.ModelStreamInferResponse(error_message=message, infer_response=echo)

        def answered(request, pending, _future) -> None:
            try:
                result = self.plane.complete(pending)
                resp = pb.ModelStreamInferResponse(infer_response=codec.encode(result, shm, pending.call.extra.get(codec.SHM_OUTPUTS)))
            except Exception as e:
                resp = failure(request, e)
            reply(resp)

        async def read() -> None:
            try:
                async for request in request_iterator:
                    state["last"] = loop.time()
                    await window.acquire()
                    state["open"] += 1
                    try:
                        if isinstance(request, BadMessage):
                            raise request.error()
                        pending = self.plane.start(
                            request.model_name, request.model_version, functools.partial(codec.decode, request, shm=shm)
                        )
                    except Exception as e:
                        reply(failure(request, e))
                        continue
                    pending.future.add_done_callback(functools.partial(answered, request, pending))
                state["reading"] = False
                if state["open"]:
                    await drained.wait()
            finally:
                answers.put_nowait(done)

        async def watchdog(reader: asyncio.Task) -> None:
            while not reader.done():
                wait = state["last"] + self.stream_idle_timeout - loop.time()
                if wait <= 0:
                    state["idle"] = True
                    reader.cancel()
                    return
                await asyncio.sleep(wait)

        reader = asyncio.ensure_future(read())
        guard = asyncio.ensure_future(watchdog(reader))
        try:
            while (item := await answers.get()) is not done:
                yield item
            if not state["idle"]:
                await reader  # surfaces a broken request stream as this RPC's error
        finally:
            reader.cancel()
            guard.cancel()
        if state["idle"]:
            await context.abort(
                grpc.StatusCode.DEADLINE_EXCEEDED, f"stream closed: no request for {self.stream_idle_timeout:g} s (--stream-idle-timeout)"
            )


def _local(peer: str) -> bool:
    """Whether a gRPC peer string names this host (loopback over IPv4 or IPv6, or a Unix socket)."""
    return is_local_grpc_peer(peer)
