"""Light augmentation of square images during training: a random half of each batch mirrored left to right.

It runs on normalised rows, which is the same as mirroring the raw pixels only when every pixel shares one
normalisation (global or none): fit() refuses it with per-feature normalisation.
"""

from __future__ import annotations

import math

import torch

AUGMENTATIONS = ("none", "flip")


def make_augment(kind: str, num_features: int, normalize: str, generator: torch.Generator):
    """Batch -> augmented batch for `kind` (None for 'none'); ValueError when the data are not square images."""
    if kind == "none":
        return None
    if kind not in AUGMENTATIONS:
        raise ValueError(f"unknown augmentation {kind!r}; expected one of {', '.join(AUGMENTATIONS)}")
    side = math.isqrt(num_features)
    if side * side != num_features:
        raise ValueError(f"--augment {kind} mirrors square images; {num_features} features are not a square image")
    if normalize == "feature":
        raise ValueError(f"--augment {kind} needs one normalisation for every pixel (--normalize global or none)")

    def flip(xb: torch.Tensor) -> torch.Tensor:
        mask = torch.rand(len(xb), generator=generator) < 0.5
        mirrored = xb.view(len(xb), side, side).flip(-1).reshape(len(xb), -1)
        return torch.where(mask.to(xb.device)[:, None], mirrored, xb)

    return flip
