"""With a bearer token set, the Prometheus port wants it too: one process's and the supervisor's merged metrics."""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request

import pytest

from tests.integration.server.server_helpers import start_subprocess_server

TOKEN = "metrics-s3cret"


def _scrape(port: int, headers: dict) -> tuple[int, str]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/metrics", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


@pytest.mark.parametrize("workers", ["1", "2"])
def test_the_metrics_port_requires_the_token(model_repo, workers):
    proc, _port, lines, metrics_port = start_subprocess_server(
        model_repo, "--workers", workers, env={"ZOO_AUTH_TOKEN": TOKEN}, metrics=True
    )
    try:
        for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": TOKEN}):
            status, text = _scrape(metrics_port, headers)
            assert status == 401, (headers, status, text[:200])
            assert "zoo_" not in text and "credentials_file" in json.loads(text)["error"]
        status, text = _scrape(metrics_port, {"Authorization": f"Bearer {TOKEN}"})
        assert status == 200 and "# TYPE" in text
    finally:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
