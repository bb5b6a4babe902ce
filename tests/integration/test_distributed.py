"""torchrun data parallelism: 2 ranks (Gloo, CPU) train the same model as 1 process does, and rank 0 writes the run."""

import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from zoo.training.checkpoint import WEIGHTS_FILE, latest_run
from zoo.data import get_recipe
from zoo.training.loop import TrainConfig, fit

ARGS = ["train", "iris", "--epochs", "4", "--batch-size", "16", "--threads", "1", "-q"]


@pytest.mark.slow
def test_two_ranks_match_one_process(tmp_path):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "zoo", *ARGS,
           "--runs", str(tmp_path / "runs")]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-4000:]
    assert "on 2 ranks" in out.stdout and out.stdout.count("test accuracy") == 1  # rank 0 alone reports
    runs = list((tmp_path / "runs" / "iris").iterdir())
    assert len(runs) == 1  # and writes
    ddp = load_file(str(latest_run(tmp_path / "runs", "iris") / WEIGHTS_FILE))
    r = get_recipe("iris")
    single = fit(r.load(), TrainConfig(**{**r.defaults, "epochs": 4, "batch_size": 16, "threads": 1})).model.state_dict()
    # Each rank takes half of every global batch of 16 and DDP averages the gradients: the same update as one
    # process on the whole batch, up to the order of floating-point sums.
    for k, v in single.items():
        torch.testing.assert_close(ddp[k], v, rtol=1e-4, atol=1e-5)
    assert not torch.equal(ddp["layers.0.weight"], torch.zeros_like(ddp["layers.0.weight"]))
