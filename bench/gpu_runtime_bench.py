"""onnxruntime CPU vs CUDA (IO binding) through the server's own runtime: rows/s by batch size, medians of 5.

    python bench/gpu_runtime_bench.py MODEL_REPOSITORY NAME
"""

from __future__ import annotations

import statistics
import sys
import time

import numpy as np
import onnxruntime as ort

from zoo.core import repository
from zoo.server import runtime


def rows_per_second(model: runtime.OnnxModel, x: np.ndarray, seconds: float = 0.5) -> float:
    """Median over 5 windows of rows/s for repeated predict(x)."""
    model.predict(x)  # warm-up: CUDA kernels and allocations
    rates = []
    for _ in range(5):
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            model.predict(x)
            n += 1
        rates.append(n * len(x) / (time.perf_counter() - t0))
    return statistics.median(rates)


def main() -> int:
    root, name = sys.argv[1], sys.argv[2]
    card = repository.read_card(root, name, repository.latest_version(root, name))
    path = str(repository.verify_model_file(root, card))
    gpu = runtime.OnnxModel(path, card, require_gpu=True)
    saved = ort.get_available_providers
    ort.get_available_providers = lambda: ["CPUExecutionProvider"]  # the same runtime, made to pick the CPU
    try:
        cpu = runtime.OnnxModel(path, card)
    finally:
        ort.get_available_providers = saved
    print(f"model {name} v{card.version}: {card.num_features} features, providers gpu={gpu.provider} cpu={cpu.provider}")
    rng = np.random.default_rng(0)
    x = np.asarray(card.selfcheck_inputs, dtype=np.float32)
    diff = float(np.abs(gpu.predict(x)["probabilities"] - cpu.predict(x)["probabilities"]).max())
    print(f"max |p_cuda - p_cpu| on the self-check rows: {diff:.2e}")
    print("| rows per call | CPU (1 thread) rows/s | CUDA + IO binding rows/s | CUDA / CPU |")
    print("|---|---|---|---|")
    for n in (1, 64, 1024, 8192):
        xb = x[rng.integers(0, len(x), n)]
        c, g = rows_per_second(cpu, xb), rows_per_second(gpu, xb)
        print(f"| {n} | {c:,.0f} | {g:,.0f} | {g / c:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
