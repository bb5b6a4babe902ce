"""Triton's perf_analyzer, the v2 ecosystem's load generator, drives our server: if it can't, stock clients can't."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import in_ci
from tests.integration.server.server_helpers import start_subprocess_server
from zoo.core import repository

TOOL = Path(__file__).resolve().parents[3].parent / "shared" / "tools" / "perf-analyzer"


def run_perf_analyzer(repo: Path, tmp_path: Path, url: str, *args: str) -> str:
    """perf_analyzer on iris at concurrency 1 and 4 with finite input rows; its stdout, after checking its CSV report."""
    if not TOOL.exists():
        if in_ci():
            pytest.fail(f"{TOOL} is missing")
        pytest.skip(
            f"perf_analyzer wrapper not found at {TOOL} (the project's shared/tools, beside this checkout): run the suite "
            "from a checkout that has ../shared/tools, or install Triton's perf_analyzer (pip wheel `perf-analyzer`, "
            "glibc >= 2.38) and put a wrapper script at that path"
        )
    card = repository.read_card(repo, "iris", repository.latest_version(repo, "iris"))
    row = [float(v) for v in card.selfcheck_inputs[0]]  # finite values: random FP32 input holds NaN/Inf patterns
    data = tmp_path / "data.json"
    # With max_batch_size > 0 the shape leaves out the batch dimension (Triton's convention).
    data.write_text(json.dumps({"data": [{"input": {"content": row, "shape": [card.num_features]}}]}))
    out = subprocess.run(
        [
            str(TOOL),
            "-m",
            "iris",
            "-u",
            url,
            "-b",
            "1",
            "--concurrency-range",
            "1:4:3",
            *args,
            "--input-data",
            str(data),
            "--measurement-interval",
            "1000",
            "-s",
            "50",
            "-r",
            "20",
            "-f",
            str(tmp_path / "pa.csv"),
        ],
        capture_output=True,
        text=True,
        timeout=420,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "Concurrency: 4, throughput:" in out.stdout, out.stdout[-2000:]
    csv = (tmp_path / "pa.csv").read_text().splitlines()
    assert csv[0].startswith("Concurrency,Inferences/Second") and len(csv) == 3  # header + concurrency 1 and 4
    assert all(float(line.split(",")[1]) > 0 for line in csv[1:])
    return out.stdout


@pytest.mark.slow
def test_perf_analyzer_runs_against_the_server(model_repo, tmp_path):
    proc, port, _ = start_subprocess_server(model_repo)
    try:
        run_perf_analyzer(model_repo, tmp_path, f"127.0.0.1:{port}", "-i", "grpc")
    finally:
        proc.terminate()
        proc.wait(30)
