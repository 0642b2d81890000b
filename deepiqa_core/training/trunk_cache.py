"""Train a network's top on features of its frozen lower convs, computed once.

On a CPU, a training step through the whole conv stack costs ~3x a forward pass per patch,
every epoch. Most of that is in the first eight convs (80 % of the multiply-adds), which a
fine-tuning barely needs to move. So the stack is split after its fourth pool (``SPLIT``):
the lower part runs once per patch (``LowerTrunk``, oneDNN on CPU) and its (256, 2, 2)
outputs are kept; training then runs only ``Top`` (conv9, conv10, the last pool and the
heads) over the kept outputs, ~20 % of a forward pass per patch and step. ``Top`` shares its
parameters with the model it was cut from, so training it trains that model.
"""

from __future__ import annotations

import copy
import warnings
from typing import cast

import numpy as np
import torch
from torch import nn

from ..models import DeepIQA

SPLIT = 20  # index in ``DeepIQA.features`` after the fourth max-pool: (N, 256, 2, 2) per patch
LOWER_SHAPE = (256, 2, 2)
PIECE_ROWS = 128  # the scorer's CPU piece size (cache-resident activations)


class LowerTrunk:
    """The frozen convs 1-8 of ``model`` (a snapshot), patches (N, 3, 32, 32) in 0..1 ->
    (N, 256, 2, 2) float32; oneDNN's blocked layout on CPUs that have it."""

    def __init__(self, model: DeepIQA) -> None:
        lower = copy.deepcopy(model.features[:SPLIT]).eval().float()
        self._onednn = torch.backends.mkldnn.is_available()
        if self._onednn:
            with warnings.catch_warnings():  # its modules use torch.jit.script_method
                warnings.simplefilter("ignore", DeprecationWarning)
                from torch.utils import mkldnn

                lower = mkldnn.to_mkldnn(lower)
        self._lower = lower

    @torch.no_grad()
    def __call__(self, patches: torch.Tensor) -> torch.Tensor:
        pieces = patches.float().split(PIECE_ROWS)
        if self._onednn:
            out = [self._lower(p.to_mkldnn()).to_dense() for p in pieces]
        else:
            out = [self._lower(p) for p in pieces]
        return torch.cat(out) if out else patches.new_zeros((0, *LOWER_SHAPE))


class Top(nn.Module):
    """Convs 9-10, the last pool and the heads of ``model`` (shared, not copied): kept lower
    outputs (N, 256, 2, 2) -> per-patch quality y (N,) and weight alpha (N,)."""

    def __init__(self, model: DeepIQA) -> None:
        super().__init__()
        if model.full_reference:
            raise ValueError("Top trains no-reference networks (FR needs both images' features)")
        self.model = model

    def upper(self) -> nn.Sequential:
        return cast(nn.Sequential, self.model.features[SPLIT:])

    def forward(self, lower: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.upper()(lower).flatten(1)
        return self.model.heads(features)


def lower_features(trunk: LowerTrunk, patches: np.ndarray) -> np.ndarray:
    """(N, 32, 32, 3) uint8 patches -> (N, 256, 2, 2) float32 kept outputs."""
    x = torch.from_numpy(np.ascontiguousarray(patches)).permute(0, 3, 1, 2).float().div_(255.0)
    return trunk(x).numpy()
