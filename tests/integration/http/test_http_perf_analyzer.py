"""Triton's perf_analyzer drives the HTTP transport too (binary and JSON tensors): stock HTTP tooling works unchanged."""

from __future__ import annotations

import re

import pytest

from tests.integration.server.server_helpers import start_subprocess_server
from tests.integration.server.test_perf_analyzer import run_perf_analyzer


@pytest.mark.slow
@pytest.mark.parametrize("tensor_format", ["binary", "json"])
def test_perf_analyzer_runs_against_the_http_port(model_repo, tmp_path, tensor_format):
    proc, _, lines = start_subprocess_server(model_repo)
    http_port = int(re.search(r"HTTP port (\d+)", next(line for line in lines if "listening on" in line)).group(1))
    try:
        run_perf_analyzer(
            model_repo,
            tmp_path,
            f"127.0.0.1:{http_port}",
            "-i",
            "http",
            "--input-tensor-format",
            tensor_format,
            "--output-tensor-format",
            tensor_format,
        )
    finally:
        proc.terminate()
        proc.wait(30)
