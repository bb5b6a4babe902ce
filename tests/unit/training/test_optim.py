"""The fused optimizers compute what torch.optim computes (same model, same batches, learning rate changed midway)."""

import copy

import pytest
import torch
from torch import nn

from zoo.training.optim import FusedAdam, FusedSGD


def twin_models():
    torch.manual_seed(0)
    a = nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 3))
    return a, copy.deepcopy(a)


@pytest.mark.parametrize("name, wd", [("adam", 0.0), ("adam", 0.01), ("sgd", 0.0), ("sgd", 0.01)])
def test_fused_optimizer_matches_torch_optim(name, wd):
    ours_model, ref_model = twin_models()
    if name == "adam":
        ours = FusedAdam(ours_model.parameters(), lr=1e-2, weight_decay=wd)
        ref = torch.optim.Adam(ref_model.parameters(), lr=1e-2, weight_decay=wd)
    else:
        ours = FusedSGD(ours_model.parameters(), lr=1e-2, momentum=0.9, weight_decay=wd)
        ref = torch.optim.SGD(ref_model.parameters(), lr=1e-2, momentum=0.9, weight_decay=wd)
    g = torch.Generator().manual_seed(1)
    for i in range(25):
        if i == 12:  # a schedule sets lr between steps; both must follow it
            ours.lr = 5e-3
            for group in ref.param_groups:
                group["lr"] = 5e-3
        x, y = torch.randn(8, 5, generator=g), torch.randint(0, 3, (8,), generator=g)
        for model, opt in ((ours_model, ours), (ref_model, ref)):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    for p, q in zip(ours_model.parameters(), ref_model.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-7)
    # and the parameters did move: a test of two frozen models would pass trivially
    assert not torch.equal(ours_model[0].weight, twin_models()[0][0].weight)


def test_zero_grad_drops_the_gradients_so_steps_do_not_accumulate():
    model, _ = twin_models()
    opt = FusedAdam(model.parameters())
    nn.functional.cross_entropy(model(torch.randn(4, 5)), torch.tensor([0, 1, 2, 0])).backward()
    assert model[0].weight.grad.abs().sum() > 0
    opt.zero_grad()
    assert all(p.grad is None for p in model.parameters())
