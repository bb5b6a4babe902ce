"""Shared fixtures: real training runs and a real exported repository, made once per test session."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

TEST_EXPORTS = ("iris", "breast-cancer")  # one multiclass and one binary model


def zoo_executable() -> str:
    """The installed `zoo` console script next to the running interpreter."""
    exe = Path(sys.executable).parent / "zoo"
    found = str(exe) if exe.exists() else shutil.which("zoo")
    if not found:
        pytest.fail("the `zoo` console script is not installed; run `pip install -e .[dev]`")
    return found


@pytest.fixture(scope="session")
def runs_and_repo(tmp_path_factory):
    """Train (few epochs) and export into a temp repository: (runs_dir, repo_dir).

    iris gets versions 1 and 2 (two runs with different seeds, so the versions answer differently);
    breast-cancer is the binary model, version 1.
    """
    pytest.importorskip("torch")
    from zoo.training.checkpoint import load_run, save_run
    from zoo.data import get_recipe
    from zoo.training.export import export_run
    from zoo.training.loop import TrainConfig, fit

    root = tmp_path_factory.mktemp("zoo")
    runs, repo = root / "runs", root / "models"
    for name, seed in [*((n, 0) for n in TEST_EXPORTS), ("iris", 1)]:
        r = get_recipe(name)
        data = r.load()
        cfg = TrainConfig(**{**r.defaults, "seed": seed})
        res = fit(data, cfg)
        path = save_run(runs, name, res.model, data, cfg.to_dict(), res.metrics, res.history)
        export_run(load_run(path), repo, name=name)
    return runs, repo


@pytest.fixture(scope="session")
def exported_repo(runs_and_repo) -> Path:
    """A model repository holding real exports of iris (multiclass, v1 and v2) and breast-cancer (binary, v1)."""
    return runs_and_repo[1]


def in_ci() -> bool:
    """True under CI, where optional data must be present rather than skipped."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_tool(tool: str, why: str) -> str:
    """The path of command-line `tool`; when it is missing the test skips saying why, or fails under CI (which
    installs every tool the suite uses: .ci/run), so a missing tool never skips a test silently there."""
    found = shutil.which(tool)
    if found is None:
        reason = f"{tool} is not installed ({why})"
        if in_ci():
            pytest.fail(f"{reason}; CI must run this test: .ci/run installs it")
        pytest.skip(reason)
    return found
