"""onnxruntime session for one model version: provider choice, predict, and the load-time self-check."""

from __future__ import annotations

import contextlib
import functools
import io
import logging

import numpy as np
import onnxruntime as ort

from zoo.core.repository import INPUT_NAME, OUTPUT_NAMES, ModelCard

log = logging.getLogger(__name__)

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
SELFCHECK_TOLERANCE = 1e-5


@functools.cache
def _preload_cuda_libraries() -> None:
    """Load CUDA/cuDNN from the nvidia-* pip packages when they are installed, once per process.

    onnxruntime-gpu finds CUDA through the dynamic loader only; libraries that came from pip live in
    site-packages where it doesn't look, and the CUDA provider then silently falls back to the CPU.
    """
    preload = getattr(ort, "preload_dlls", None)
    if preload is None:
        return
    with contextlib.redirect_stdout(io.StringIO()):  # it prints its findings; the provider readback is what we log
        try:
            preload(directory="")
        except Exception as e:  # a failed preload only means CUDA may not be usable: the readback tells
            log.debug("preloading CUDA libraries failed: %s", e)


# Whether the CUDA provider really came up in this process: None until the first session tells.
_cuda_usable: bool | None = None


class GpuRequired(RuntimeError):
    """require_gpu is set but CUDA is not what really runs the model."""


class OnnxModel:
    """An onnxruntime InferenceSession with the model contract checked (input/outputs, widths)."""

    def __init__(self, path: str, card: ModelCard, *, intra_op_threads: int = 1, require_gpu: bool = False):
        self.card = card
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = intra_op_threads
        opts.inter_op_num_threads = 1  # MLPs are a chain of ops: nothing to run side by side
        opts.log_severity_level = 3
        global _cuda_usable
        wanted: list = [CPU]
        # onnxruntime-gpu lists CUDA even where its libraries are missing; once a session has shown that,
        # later models go straight to the CPU instead of repeating the failed load (and its error log).
        if CUDA in ort.get_available_providers() and (_cuda_usable is not False or require_gpu):
            _preload_cuda_libraries()
            # TF32 matmuls (the CUDA provider's default) drift ~3e-4 from the exported FP32 model, which the
            # self-check and the export parity gate (1e-5) rightly refuse: keep full FP32.
            wanted = [(CUDA, {"use_tf32": "0"}), CPU]
        self.session = ort.InferenceSession(path, sess_options=opts, providers=wanted)
        # What was asked for is not what runs: CUDA silently falls back when its libraries are missing.
        self.providers = self.session.get_providers()
        self.provider = self.providers[0]
        self.on_gpu = self.provider == CUDA
        if len(wanted) > 1 and _cuda_usable is None:
            _cuda_usable = self.on_gpu
            if not self.on_gpu:
                log.warning("the CUDA provider is installed but did not load (see onnxruntime's message above): "
                            "models run on %s; --require-gpu makes this fatal", self.provider)
        log.info("model %s v%s runs on %s", card.name, card.version, self.provider)
        if require_gpu and not self.on_gpu:
            raise GpuRequired(f"model {card.name} v{card.version} runs on {self.provider}, but --require-gpu is set")
        self._check_contract()

    def _check_contract(self) -> None:
        inputs = {i.name: i for i in self.session.get_inputs()}
        outputs = {o.name for o in self.session.get_outputs()}
        if set(inputs) != {INPUT_NAME}:
            raise ValueError(f"model must have one input {INPUT_NAME!r}, has {sorted(inputs)}")
        missing = [o for o in OUTPUT_NAMES if o not in outputs]
        if missing:
            raise ValueError(f"model lacks outputs {missing}")
        width = inputs[INPUT_NAME].shape[-1]
        if isinstance(width, int) and width != self.card.num_features:
            raise ValueError(f"model input has {width} features, metadata lists {self.card.num_features}")

    def predict(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Run the graph on [N, F] FP32 rows; returns every output by name."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        if self.on_gpu:
            # IO binding: the input is copied to the device once and outputs come back in one copy each.
            binding = self.session.io_binding()
            binding.bind_cpu_input(INPUT_NAME, x)
            for name in OUTPUT_NAMES:
                binding.bind_output(name, "cpu")
            self.session.run_with_iobinding(binding)
            values = binding.copy_outputs_to_cpu()
            return dict(zip(OUTPUT_NAMES, values))
        values = self.session.run(list(OUTPUT_NAMES), {INPUT_NAME: x})
        return dict(zip(OUTPUT_NAMES, values))

    def selfcheck(self) -> None:
        """Run the exporter's selfcheck rows; raises ValueError when probabilities drift by more than 1e-5."""
        if not self.card.selfcheck_inputs:
            log.warning("model %s v%s has no selfcheck rows; serving unchecked", self.card.name, self.card.version)
            return
        x = np.asarray(self.card.selfcheck_inputs, dtype=np.float32)
        want = np.asarray(self.card.selfcheck_probabilities, dtype=np.float32)
        got = self.predict(x)["probabilities"]
        if got.shape != want.shape:
            raise ValueError(f"selfcheck: probabilities shape {list(got.shape)} != exported {list(want.shape)}")
        diff = float(np.max(np.abs(got - want)))
        if not diff <= SELFCHECK_TOLERANCE:
            raise ValueError(f"selfcheck failed: max |probability difference| {diff:.3g} > {SELFCHECK_TOLERANCE}")
