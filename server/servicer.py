"""GRPCInferenceService: the KServe v2 / Triton gRPC protocol on top of the registry."""

from __future__ import annotations

import json
import time

from zoo.proto import grpc_service_pb2 as pb
from zoo.proto import grpc_service_pb2_grpc as pb_grpc
from zoo.proto import model_config_pb2 as mc
from zoo.core.repository import INPUT_NAME
from zoo.server import codec, postprocess
from zoo.server.errors import ModelNotFound, ModelNotReady
from zoo.server.grpc_errors import code_for, grpc_errors, status_for
from zoo.server.metrics import Metrics, VersionStats
from zoo.server.registry import LoadedVersion, Registry
from zoo.server.settings import ServerSettings

SERVER_NAME = "zoo"
SERVER_VERSION = "0.1.0"
PLATFORM = "onnxruntime_onnx"
EXTENSIONS = ["model_repository", "statistics", "parameters"]


def tensor_specs(lv: LoadedVersion) -> list[tuple[str, str, list[int]]]:
    """(name, datatype, shape with batch dim -1) of the model's outputs."""
    c = lv.card.num_classes
    return [("probabilities", "FP32", [-1, c]), ("one_hot", "FP32", [-1, c]), ("label", "INT64", [-1])]


class InferenceServicer(pb_grpc.GRPCInferenceServiceServicer):
    """Every RPC of GRPCInferenceService that zoo implements."""

    def __init__(self, registry: Registry, metrics: Metrics, settings: ServerSettings):
        self.registry = registry
        self.metrics = metrics
        self.settings = settings
        self.started = False
        self.shutting_down = False

    # health

    @grpc_errors
    async def ServerLive(self, request, context):
        return pb.ServerLiveResponse(live=True)

    @grpc_errors
    async def ServerReady(self, request, context):
        # Ready once start-up loading is over and until draining starts; a broken model is reported
        # by ModelReady and RepositoryIndex, not by taking the healthy ones out of rotation.
        return pb.ServerReadyResponse(ready=self.started and not self.shutting_down)

    @grpc_errors
    async def ModelReady(self, request, context):
        try:
            self.registry.get(request.name, request.version)
        except ModelNotFound:
            raise
        except ModelNotReady:
            return pb.ModelReadyResponse(ready=False)
        return pb.ModelReadyResponse(ready=not self.shutting_down)

    # metadata

    @grpc_errors
    async def ServerMetadata(self, request, context):
        return pb.ServerMetadataResponse(name=SERVER_NAME, version=SERVER_VERSION, extensions=EXTENSIONS)

    @grpc_errors
    async def ModelMetadata(self, request, context):
        lv = self.registry.get(request.name, request.version)
        entry = self.registry.entry(request.name)
        resp = pb.ModelMetadataResponse(name=request.name, versions=[str(v) for v in sorted(entry.loaded)], platform=PLATFORM)
        resp.inputs.add(name=INPUT_NAME, datatype="FP32", shape=[-1, lv.card.num_features])
        for name, dtype, shape in tensor_specs(lv):
            resp.outputs.add(name=name, datatype=dtype, shape=shape)
        return resp

    @grpc_errors
    async def ModelConfig(self, request, context):
        lv = self.registry.get(request.name, request.version)
        card = lv.card
        cfg = mc.ModelConfig(name=request.name, platform=PLATFORM, backend="onnxruntime", max_batch_size=self.settings.max_batch_size)
        cfg.input.add(name=INPUT_NAME, data_type=mc.TYPE_FP32, dims=[card.num_features])
        for name, dtype, shape in tensor_specs(lv):
            out = cfg.output.add(name=name, data_type=mc.TYPE_FP32 if dtype == "FP32" else mc.TYPE_INT64, dims=shape[1:] or [1])
            if len(shape) == 1:
                out.reshape.SetInParent()  # a per-row scalar: dims [1] in config, [N] on the wire (Triton's convention)
        cfg.dynamic_batching.max_queue_delay_microseconds = self.settings.max_queue_delay_us
        params = {
            "execution_provider": lv.provider,
            "version": str(lv.version),
            "task": card.task,
            "default_threshold": repr(card.default_threshold),
            # JSON lists: names may hold commas ("T-shirt/top, long" is a fine class name)
            "feature_names": json.dumps(card.feature_names),
            "class_names": json.dumps(card.class_names),
        }
        for k, v in params.items():
            cfg.parameters[k].string_value = v
        return pb.ModelConfigResponse(config=cfg)

    @grpc_errors
    async def ModelStatistics(self, request, context):
        resp = pb.ModelStatisticsResponse()
        names = [request.name] if request.name else self.registry.names()
        for name in names:
            entry = self.registry.entry(name)
            if request.version:
                versions = [self.registry.get(name, request.version).version]
            else:
                versions = sorted(entry.loaded)
            for v in versions:
                self._fill_stats(resp.model_stats.add(name=name, version=str(v)), self.metrics.version_stats(name, v))
        return resp

    @staticmethod
    def _fill_stats(m: pb.ModelStatistics, s: VersionStats) -> None:
        m.last_inference, m.inference_count, m.execution_count = s.last_inference_ms, s.inference_count, s.execution_count
        st = m.inference_stats
        st.success.count, st.success.ns = s.success_count, s.success_ns
        st.fail.count, st.fail.ns = s.fail_count, s.fail_ns
        st.queue.count, st.queue.ns = s.queue_count, s.queue_ns
        st.compute_infer.count, st.compute_infer.ns = s.compute_count, s.compute_ns
        # The whole model call is timed as compute_infer; perf_analyzer requires the three compute
        # counts to agree, so input/output preparation report the same count with no time of their own.
        st.compute_input.count = st.compute_output.count = s.compute_count
        for rows, (count, ns) in sorted(s.batch_sizes.items()):
            b = m.batch_stats.add(batch_size=rows)
            b.compute_infer.count, b.compute_infer.ns = count, ns
            b.compute_input.count = b.compute_output.count = count

    # repository

    @grpc_errors
    async def RepositoryIndex(self, request, context):
        resp = pb.RepositoryIndexResponse()
        for name, version, state, reason in self.registry.index():
            if request.ready and state != "READY":
                continue
            resp.models.add(name=name, version=version, state=state, reason=reason)
        return resp

    @grpc_errors
    async def RepositoryModelLoad(self, request, context):
        await self.registry.load(request.model_name, retry_failed=True)
        return pb.RepositoryModelLoadResponse()

    @grpc_errors
    async def RepositoryModelUnload(self, request, context):
        await self.registry.unload(request.model_name)
        return pb.RepositoryModelUnloadResponse()

    # inference

    @grpc_errors
    async def ModelInfer(self, request, context):
        return await self._infer(request)

    async def ModelStreamInfer(self, request_iterator, context):
        """Requests of one stream are answered in order; an error answers that request only."""
        async for request in request_iterator:
            try:
                resp = await self._infer(request)
            except Exception as e:
                _, message = status_for(e)
                yield pb.ModelStreamInferResponse(error_message=message)
            else:
                yield pb.ModelStreamInferResponse(infer_response=resp)

    async def _infer(self, request: pb.ModelInferRequest) -> pb.ModelInferResponse:
        started = time.perf_counter()
        version = None
        rows = 0
        try:
            # Lookup, validation and enqueue run without an await in between, so a version swap
            # can't retire the batcher we picked before our rows are queued on it.
            lv = self.registry.get(request.model_name, request.model_version)
            version = lv.version
            x = codec.decode_input(request, lv.card)
            rows = len(x)
            names = postprocess.select_outputs(codec.requested_outputs(request))
            threshold = postprocess.parse_threshold(codec.request_parameters(request))
            outputs = await lv.batcher.submit(x)
            result = postprocess.finish(outputs, lv.card, names, threshold)
            resp = codec.encode_response(request, lv.version, result)
        except Exception as e:
            # Unknown model names are not recorded: clients could otherwise grow the label set without bound.
            if not isinstance(e, ModelNotFound) or version is not None:
                self.metrics.request_done(request.model_name, version, rows, time.perf_counter() - started, code_for(e).name)
            raise
        self.metrics.request_done(request.model_name, version, rows, time.perf_counter() - started, None)
        return resp
