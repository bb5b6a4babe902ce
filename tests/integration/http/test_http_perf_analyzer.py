"""Triton's perf_analyzer drives the HTTP transport too (binary and JSON tensors): stock HTTP tooling works unchanged."""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from tests.conftest import in_ci
from tests.integration.server.server_helpers import start_subprocess_server
from tests.integration.server.test_perf_analyzer import TOOL
from zoo.core import repository


@pytest.mark.slow
@pytest.mark.parametrize("tensor_format", ["binary", "json"])
def test_perf_analyzer_runs_against_the_http_port(model_repo, tmp_path, tensor_format):
    if not TOOL.exists():
        if in_ci():
            pytest.fail(f"{TOOL} is missing")
        pytest.skip(f"perf_analyzer wrapper not found at {TOOL}")
    card = repository.read_card(model_repo, "iris", repository.latest_version(model_repo, "iris"))
    row = [float(v) for v in card.selfcheck_inputs[0]]  # finite values: random FP32 input holds NaN/Inf patterns
    data = tmp_path / "data.json"
    # With max_batch_size > 0 the shape leaves out the batch dimension (Triton's convention).
    data.write_text(json.dumps({"data": [{"input": {"content": row, "shape": [card.num_features]}}]}))
    proc, _, lines = start_subprocess_server(model_repo)
    http_port = int(re.search(r"HTTP port (\d+)", next(line for line in lines if "listening on" in line)).group(1))
    try:
        out = subprocess.run(
            [str(TOOL), "-m", "iris", "-u", f"127.0.0.1:{http_port}", "-i", "http", "-b", "1", "--concurrency-range", "1:4:3",
             "--input-tensor-format", tensor_format, "--output-tensor-format", tensor_format,
             "--input-data", str(data), "--measurement-interval", "1000", "-s", "50", "-r", "20", "-f", str(tmp_path / "pa.csv")],
            capture_output=True, text=True, timeout=420,
        )
    finally:
        proc.terminate()
        proc.wait(30)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "Concurrency: 4, throughput:" in out.stdout, out.stdout[-2000:]
    csv = (tmp_path / "pa.csv").read_text().splitlines()
    assert csv[0].startswith("Concurrency,Inferences/Second") and len(csv) == 3  # header + concurrency 1 and 4
    assert all(float(line.split(",")[1]) > 0 for line in csv[1:])
