"""Light augmentation: a random half of each batch mirrored left to right, only for square images."""

import pytest
import torch

from zoo.training.augment import make_augment


def test_flip_mirrors_some_rows_and_keeps_the_others():
    side = 4
    x = torch.arange(8 * side * side, dtype=torch.float32).reshape(8, side * side)
    out = make_augment("flip", side * side, "global", torch.Generator().manual_seed(0))(x)
    mirrored = x.view(8, side, side).flip(-1).reshape(8, -1)
    same = [torch.equal(o, r) for o, r in zip(out, x)]
    flipped = [torch.equal(o, m) for o, m in zip(out, mirrored)]
    assert all(a != b for a, b in zip(same, flipped)) and any(same) and any(flipped)


@pytest.mark.parametrize("features, normalize, message", [
    (10, "global", "10 features are not a square image"),
    (16, "feature", "--normalize global or none"),
])
def test_flip_is_refused_where_it_would_not_mirror_the_pixels(features, normalize, message):
    with pytest.raises(ValueError, match=message):
        make_augment("flip", features, normalize, torch.Generator())
    assert make_augment("none", features, normalize, torch.Generator()) is None
