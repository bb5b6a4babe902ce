"""ModelStreamInfer: each request is decoded and queued as it arrives; answers go back as they finish, each with its id.

Requests of one stream therefore batch with each other and with everyone else's. An error answers only its own
request. No task is made per request: the batcher's future calls back with the answer. A stream ends early, with
a status naming why, when it sends no first request in time, goes idle, or the server starts draining; one client
address may hold only so many streams open (limits.PeerStreams).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from dataclasses import dataclass

import grpc

from zoo.proto import grpc_service_pb2 as pb
from zoo.server.dataplane import DataPlane
from zoo.server.grpc_api import codec
from zoo.server.grpc_api.limits import PeerStreams
from zoo.server.grpc_api.service import BadMessage
from zoo.server.grpc_api.status import status_for

STREAM_WINDOW = 512  # requests of one stream decoded and queued before its answers are read


@dataclass(frozen=True)
class StreamLimits:
    """When a stream is closed for sending nothing."""

    first_message_timeout: float = 10.0
    idle_timeout: float = 300.0


# Why a stream ended early: (status code, message), formatted with the limits.
ENDINGS = {
    "first": (grpc.StatusCode.DEADLINE_EXCEEDED, "stream closed: no first request within {first:g} s (--stream-first-message-timeout)"),
    "idle": (grpc.StatusCode.DEADLINE_EXCEEDED, "stream closed: no request for {idle:g} s (--stream-idle-timeout)"),
    "drain": (
        grpc.StatusCode.UNAVAILABLE,
        "the server is shutting down: every request this stream sent before was answered; open a new stream on another instance",
    ),
}


@dataclass(slots=True)
class _State:
    last: float  # loop time of the last request (or of the opening)
    open: int = 0  # requests queued and not yet answered
    sent: int = 0  # requests read so far
    reading: bool = True
    ended: str = ""  # why the stream was ended early: a key of ENDINGS


async def serve_stream(plane: DataPlane, request_iterator, context, limits: StreamLimits, peers: PeerStreams, decode: Callable, shm):
    """The ModelStreamInfer handler's body; `decode(request)` makes each message an InferRequest, and `shm` (the
    shared memory this peer may use) takes outputs written to regions."""
    try:
        address = peers.enter(context.peer())
    except Exception as e:
        code, message = status_for(e)
        await context.abort(code, message)
    try:
        async for item in _answers(plane, request_iterator, context, limits, decode, shm):
            yield item
    finally:
        peers.leave(address)


async def _answers(plane: DataPlane, request_iterator, context, limits: StreamLimits, decode: Callable, shm):
    loop = asyncio.get_running_loop()
    answers: asyncio.Queue = asyncio.Queue()
    window = asyncio.Semaphore(STREAM_WINDOW)
    done = object()
    state = _State(last=loop.time())

    def reply(resp) -> None:
        window.release()
        answers.put_nowait(resp)
        state.open -= 1
        if not state.open and not state.reading:
            answers.put_nowait(done)

    def failure(request, e: Exception):
        _, message = status_for(e)
        echo = pb.ModelInferResponse(model_name=request.model_name, model_version=request.model_version, id=request.id)
        return pb.ModelStreamInferResponse(error_message=message, infer_response=echo)

    def answered(request, pending, _future) -> None:
        try:
            result = plane.complete(pending)
            resp = pb.ModelStreamInferResponse(infer_response=codec.encode(result, shm, pending.request.output_regions))
        except Exception as e:
            resp = failure(request, e)
        reply(resp)

    async def read() -> None:
        async for request in request_iterator:
            state.last = loop.time()
            state.sent += 1
            await window.acquire()
            state.open += 1
            try:
                if isinstance(request, BadMessage):
                    raise request.error()
                pending = plane.start(decode(request))
            except Exception as e:
                reply(failure(request, e))
                continue
            pending.future.add_done_callback(functools.partial(answered, request, pending))

    def read_ended(_task) -> None:  # a callback: it runs even when the reader is cancelled before it starts
        state.reading = False  # answers still owed go out before the stream ends
        if not state.open:
            answers.put_nowait(done)

    def end(why: str) -> None:
        if not state.ended:
            state.ended = why
            reader.cancel()

    async def watchdog() -> None:
        while not reader.done():
            first = not state.sent
            limit = limits.first_message_timeout if first else limits.idle_timeout  # each timeout governs its phase
            wait = state.last + limit - loop.time()
            if wait <= 0:
                end("first" if first else "idle")
                return
            await asyncio.sleep(min(wait, limits.idle_timeout))  # a first request that comes shortens the wait

    reader = asyncio.ensure_future(read())
    reader.add_done_callback(read_ended)
    guard = asyncio.ensure_future(watchdog())
    unhook = plane.on_drain(lambda: end("drain"))
    if plane.shutting_down:
        end("drain")
    try:
        while (item := await answers.get()) is not done:
            yield item
        if not state.ended:
            await reader  # surfaces a broken request stream as this RPC's error
    finally:
        unhook()
        reader.cancel()
        guard.cancel()
    if state.ended:
        code, message = ENDINGS[state.ended]
        await context.abort(code, message.format(first=limits.first_message_timeout, idle=limits.idle_timeout))
