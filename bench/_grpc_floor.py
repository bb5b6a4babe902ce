"""The floor of a Python grpc.aio server: ModelInfer answers a cached, pre-built response; no model, no batcher.

Started by bench/serving/targets.py (goal F) to show how much of zoo's per-request cost is grpc.aio itself.
Binds --port (default 0: any free port) and prints "listening on 127.0.0.1:PORT" with the port it got; runs until SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

import grpc
import numpy as np

from zoo.proto import grpc_service_pb2 as pb
from zoo.proto import grpc_service_pb2_grpc as pb_grpc

CLASSES = {"iris": 3, "mnist": 10}


class Floor(pb_grpc.GRPCInferenceServiceServicer):
    """Answers with outputs of the right shape (zeros), built once per (model, rows)."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, int], pb.ModelInferResponse] = {}

    def _response(self, model: str, rows: int) -> pb.ModelInferResponse:
        c = CLASSES.get(model, 2)
        resp = pb.ModelInferResponse(model_name=model, model_version="1")
        for name, dtype, arr in (("probabilities", "FP32", np.zeros((rows, c), "<f4")),
                                 ("one_hot", "FP32", np.zeros((rows, c), "<f4")), ("label", "INT64", np.zeros(rows, "<i8"))):
            resp.outputs.add(name=name, datatype=dtype, shape=arr.shape)
            resp.raw_output_contents.append(arr.tobytes())
        return resp

    async def ServerReady(self, request, context):
        return pb.ServerReadyResponse(ready=True)

    async def ModelReady(self, request, context):
        return pb.ModelReadyResponse(ready=True)

    async def ModelInfer(self, request, context):
        key = (request.model_name, int(request.inputs[0].shape[0]))
        resp = self._cache.get(key)
        if resp is None:
            resp = self._cache[key] = self._response(*key)
        return resp


async def serve(port: int) -> None:
    server = grpc.aio.server(options=[("grpc.max_receive_message_length", 64 << 20), ("grpc.max_send_message_length", 64 << 20)])
    pb_grpc.add_GRPCInferenceServiceServicer_to_server(Floor(), server)
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    print(f"listening on 127.0.0.1:{bound}", file=sys.stderr, flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await server.stop(1)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, default=0)
    asyncio.run(serve(p.parse_args(argv).port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
