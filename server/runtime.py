"""One model version in onnxruntime: the session, its contract check, predict, and the load-time self-check."""

from __future__ import annotations

import logging
import time

import numpy as np

from zoo.core.contract import INPUT_NAME, PROBABILITIES, ModelCard
from zoo.core.onnx_session import CPU, gpu_wanted, open_session

log = logging.getLogger(__name__)

SELFCHECK_TOLERANCE = 1e-5
TIMINGS = 15  # calls timed per size when rows_within measures a model at load
_cuda_usable: bool | None = None  # whether CUDA came up in this process: None until the first session tells


def provider_notice() -> str:
    """One line saying which execution provider this process uses, and why."""
    import onnxruntime as ort

    from zoo.core.onnx_session import CUDA, cuda_driver_present

    if CUDA not in ort.get_available_providers():
        return f"execution provider: {CPU} (this onnxruntime has no CUDA provider)"
    if not cuda_driver_present():
        return f"execution provider: {CPU} (no NVIDIA driver on this machine: CUDA not tried)"
    if _cuda_usable is False:
        return f"execution provider: {CPU} (the CUDA provider did not load; --require-gpu makes this fatal)"
    return f"execution provider: {CUDA}"


class GpuRequired(RuntimeError):
    """require_gpu is set but CUDA is not what really runs the model."""


class OnnxModel:
    """An onnxruntime session checked against the card's contract; predict() maps [N, F] rows to every output."""

    def __init__(self, model: bytes | str, card: ModelCard, *, intra_op_threads: int = 1, require_gpu: bool = False):
        global _cuda_usable
        self.card = card
        # Once a session has shown CUDA does not load, later models go straight to the CPU instead of repeating it.
        try_gpu = require_gpu or (gpu_wanted() and _cuda_usable is not False)
        opened = open_session(model, threads=intra_op_threads, gpu=try_gpu)
        self.session, self.provider = opened.session, opened.provider
        self.on_gpu = opened.on_gpu
        if try_gpu and _cuda_usable is None:
            _cuda_usable = self.on_gpu
            if not self.on_gpu:
                log.warning(
                    "the CUDA provider is installed but did not load: models run on %s; --require-gpu makes this fatal", self.provider
                )
        if require_gpu and not self.on_gpu:
            raise GpuRequired(f"model {card.name} v{card.version} runs on {self.provider}, but --require-gpu is set")
        self.output_names = [o.name for o in card.outputs]
        self._check_contract()

    def _check_contract(self) -> None:
        inputs = {i.name: i for i in self.session.get_inputs()}
        outputs = {o.name for o in self.session.get_outputs()}
        if set(inputs) != {INPUT_NAME}:
            raise ValueError(f"model must have one input {INPUT_NAME!r}, has {sorted(inputs)}")
        missing = [o for o in self.output_names if o not in outputs]
        if missing:
            raise ValueError(f"model lacks outputs {missing}")
        width = inputs[INPUT_NAME].shape[-1]
        if isinstance(width, int) and width != self.card.num_features:
            raise ValueError(f"model input has {width} features, metadata lists {self.card.num_features}")
        shapes = {o.name: o.shape for o in self.session.get_outputs()}
        for spec in self.card.outputs:
            shape = shapes[spec.name]
            if len(shape) != len(spec.shape) or (len(shape) > 1 and isinstance(shape[-1], int) and shape[-1] != spec.shape[-1]):
                raise ValueError(
                    f"model output {spec.name!r} has shape {list(shape)}, metadata says {list(spec.shape)} "
                    f"({self.card.num_classes} classes)"
                )

    def predict(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Run the graph on C-contiguous [N, F] FP32 rows; returns every output by name."""
        if self.on_gpu:
            # IO binding: the input is copied to the device once and outputs come back in one copy each.
            binding = self.session.io_binding()
            binding.bind_cpu_input(INPUT_NAME, x)
            for name in self.output_names:
                binding.bind_output(name, "cpu")
            self.session.run_with_iobinding(binding)
            return dict(zip(self.output_names, binding.copy_outputs_to_cpu(), strict=True))
        return dict(zip(self.output_names, self.session.run(self.output_names, {INPUT_NAME: x}), strict=True))

    def rows_within(self, budget_s: float, max_rows: int) -> int:
        """How many rows one call answers within budget_s, from timing 1 and 64 rows (0 if 1 row is over)."""
        row = np.ascontiguousarray(self.card.selfcheck_inputs[:1], dtype=np.float32)

        def cost(n: int) -> float:
            # The fastest of several calls: a busy machine (a server starting beside this one) only ever adds time,
            # and a median of 5 read the same model as anything from 21 to 56 rows, sometimes pushing the batches
            # of 16 concurrent callers off the loop (20-30% of their throughput, bench/RESULTS.md).
            x = np.ascontiguousarray(np.repeat(row, n, axis=0))
            fastest = float("inf")
            for _ in range(TIMINGS):
                started = time.perf_counter()
                self.predict(x)
                fastest = min(fastest, time.perf_counter() - started)
            return fastest

        one = cost(1)
        if one > budget_s:
            return 0
        per_row = max(0.0, (cost(64) - one) / 63)
        return max(1, min(max_rows, int((budget_s - one) / per_row) + 1 if per_row else max_rows))

    def selfcheck(self) -> None:
        """Run the exporter's self-check rows; ValueError when there are none or probabilities drift by > 1e-5."""
        card = self.card
        if not card.selfcheck_inputs:
            raise ValueError("metadata has no self-check rows: the version cannot be verified; re-export it with `zoo export`")
        x = np.ascontiguousarray(card.selfcheck_inputs, dtype=np.float32)
        want = np.asarray(card.selfcheck_probabilities, dtype=np.float32)
        got = self.predict(x)[PROBABILITIES]
        if got.shape != want.shape:
            raise ValueError(f"self-check: probabilities shape {list(got.shape)} != exported {list(want.shape)}")
        diff = float(np.max(np.abs(got - want)))
        if not diff <= SELFCHECK_TOLERANCE:
            raise ValueError(f"self-check failed: max |probability difference| {diff:.3g} > {SELFCHECK_TOLERANCE}")


__all__ = ["CPU", "GpuRequired", "OnnxModel", "SELFCHECK_TOLERANCE"]
