"""Every Python snippet in the README runs as written against a served zoo (only the ports are the test's own)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from tests.integration.server.server_helpers import ThreadServer, settings_for

README = Path(__file__).resolve().parents[2] / "README.md"


def python_snippets() -> list[tuple[int, str]]:
    """(line, code) of each ```python block of the README, in order."""
    text = README.read_text(encoding="utf-8")
    return [(text.count("\n", 0, m.start()) + 1, m.group(1)) for m in re.finditer(r"^```python\n(.*?)^```", text, re.M | re.S)]


@pytest.fixture(scope="module")
def server(exported_repo):
    srv = ThreadServer(settings_for(exported_repo)).start()
    yield srv
    srv.stop()


def test_the_readme_has_python_snippets():
    assert len(python_snippets()) >= 3


def test_every_python_snippet_runs_as_written(server, capsys):
    # The snippets follow on from each other (one names `inp` that an earlier one made), as a reader runs them.
    namespace: dict = {"__name__": "readme"}
    ports = {"localhost:8001": server.address, "localhost:8000": f"127.0.0.1:{server.server.http_port}"}
    for line, code in python_snippets():
        for theirs, ours in ports.items():
            code = code.replace(theirs, ours)
        try:
            exec(compile(code, f"README.md:{line}", "exec"), namespace)
        except Exception as e:
            pytest.fail(f"the README's snippet at line {line} fails as written: {type(e).__name__}: {e}")
    assert "setosa" in capsys.readouterr().out  # the first snippet's row is a setosa


def test_every_yaml_snippet_parses():
    import yaml

    text = README.read_text(encoding="utf-8")
    blocks = re.findall(r"^```yaml\n(.*?)^```", text, re.M | re.S)
    assert blocks, "the README shows a Prometheus configuration and an alert rule"
    for block in blocks:
        assert isinstance(yaml.safe_load(block), dict)
