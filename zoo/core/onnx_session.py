"""The one onnxruntime session builder of zoo: export's parity gate, `zoo evaluate` and the server all open models here."""

from __future__ import annotations

import contextlib
import ctypes
import functools
import io
import logging
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
_QUIET = 3  # onnxruntime log severity: errors only from sessions we make


@functools.cache
def cuda_driver_present() -> bool:
    """Whether an NVIDIA driver is installed (libcuda loads): without one, asking for CUDA can only fail noisily."""
    try:
        ctypes.CDLL("libcuda.so.1")
    except OSError:
        return False
    return True


@functools.cache
def _preload_cuda_libraries() -> None:
    """Load CUDA/cuDNN from the nvidia-* pip packages when they are installed, once per process.

    onnxruntime-gpu finds CUDA through the dynamic loader only; libraries that came from pip live in
    site-packages where it doesn't look, and the CUDA provider then silently falls back to the CPU.
    """
    import onnxruntime as ort

    preload = getattr(ort, "preload_dlls", None)
    if preload is None:
        return
    with contextlib.redirect_stdout(io.StringIO()):  # it prints its findings; the provider readback is what we log
        try:
            preload(directory="")
        except Exception as e:  # a failed preload only means CUDA may not be usable: the readback tells
            log.debug("preloading CUDA libraries failed: %s", e)


def gpu_wanted() -> bool:
    """Whether to ask onnxruntime for CUDA: its provider is installed and a driver is there to run it."""
    import onnxruntime as ort

    return CUDA in ort.get_available_providers() and cuda_driver_present()


@dataclass
class Session:
    """An onnxruntime InferenceSession and the provider that really runs it."""

    session: Any  # onnxruntime.InferenceSession (onnxruntime ships no type information)
    provider: str

    @property
    def on_gpu(self) -> bool:
        """Whether CUDA runs the model."""
        return self.provider == CUDA


def open_session(model: str | bytes, *, threads: int = 1, gpu: bool = False) -> Session:
    """A session on the CPU (or CUDA first when `gpu`), `threads` intra-op threads (0: onnxruntime's default).

    `model` is a path or the model's bytes (the server passes bytes it has verified, so onnxruntime never
    opens a repository path itself).
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1  # an MLP is a chain of ops: nothing to run side by side
    opts.log_severity_level = _QUIET
    providers: list = [CPU]
    if gpu:
        _preload_cuda_libraries()
        # TF32 matmuls (the CUDA provider's default) drift ~3e-4 from the exported FP32 model, which the
        # self-check and the export parity gate (1e-5) rightly refuse: keep full FP32.
        providers = [(CUDA, {"use_tf32": "0"}), CPU]
    session = ort.InferenceSession(model, sess_options=opts, providers=providers)
    # What was asked for is not what runs: CUDA silently falls back when its libraries are missing.
    return Session(session, session.get_providers()[0])
