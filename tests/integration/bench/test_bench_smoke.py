"""The serving benchmark's harness end to end: a smoke run (its numbers mean nothing) writes the section and GOALS table."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
BENCH = ROOT / "bench"


@pytest.mark.slow
def test_serve_bench_smoke_run_writes_the_goals_table(tmp_path):
    out = tmp_path / "RESULTS.md"
    cmd = [sys.executable, str(BENCH / "serve_bench.py"), "--quick", "--only", "F", "--skip-triton", "--rounds", "1",
           "--out", str(out), "--raw-dir", str(tmp_path)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=240, cwd=ROOT)  # trains mnist first when bench/out lacks it
    assert r.returncode == 0, r.stderr[-3000:]
    text = out.read_text(encoding="utf-8")
    assert text.startswith("# Benchmark results") and "\n## Serving\n" in text and "\n### GOALS\n" in text
    assert re.search(r"^\| F \| .* \| (PASS|FAIL) \|$", text, re.M), text[-3000:]  # measured: zoo vs the grpc.aio floor
    assert re.search(r"^\| S \| .* \| not measured here \|$", text, re.M)  # not selected, still listed
    assert "skipped (--skip-triton)" in text
    assert len(list(tmp_path.glob("serve_bench-*.json"))) == 1


def test_rewriting_the_serving_section_keeps_the_other_sections(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    from serving.report import write_section

    doc = tmp_path / "RESULTS.md"
    before = ("# Benchmark results\n\n## Training\n\nt\n\n## Serving\n\nold\n### old table\n\n"
              "## Loading training data (CSV)\n\nc\n")
    doc.write_text(before, encoding="utf-8")
    write_section("## Serving\n\nnew\n\n### GOALS\n", doc)
    after = doc.read_text(encoding="utf-8")
    assert after == before.replace("old\n### old table\n", "new\n\n### GOALS\n")
