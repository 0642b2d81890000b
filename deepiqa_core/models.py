"""The four DeepIQA networks (Bosse et al., IEEE TIP 2018) in one module.

``DeepIQA(full_reference, weighted)`` covers DIQaM-NR, WaDIQaM-NR, DIQaM-FR and WaDIQaM-FR:

* features: ten 3x3 convs (padding 1, bias, ReLU) with a 2x2 max-pool after every second one;
  channels 32,32,64,64,128,128,256,256,512,512; a 32x32 patch becomes a 512-d vector;
* quality head: Linear(D,512), ReLU, Dropout(0.5), Linear(512,1); D = 512 (NR) or 1536 (FR);
* weight head (Wa* only): the same shape followed by ReLU and ``+ epsilon``.

FR fusion order is the authors' (dmaniry/deepIQA): ``[f_d - f_r, f_d, f_r]`` (``FUSION_ORDER``).
Converters permute other layouts' 1536 input columns into this order.

Input: float RGB patches in 0..1 (``INPUT_RANGE``); 0..255 weights are rescaled on import.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import torch
from torch import nn

from .calibration import Calibration

PATCH_SIZE = 32
FEATURE_DIM = 512
HIDDEN_DIM = 512
DEFAULT_EPSILON = 1e-6
FUSION_ORDER = "d-r,d,r"
INPUT_RANGE = "0..1"
CONV_CHANNELS = (32, 32, 64, 64, 128, 128, 256, 256, 512, 512)


@dataclass(frozen=True)
class Variant:
    """A network variant: its public name and the two switches that define it."""

    name: str
    full_reference: bool
    weighted: bool


VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant("diqam-nr", full_reference=False, weighted=False),
        Variant("wadiqam-nr", full_reference=False, weighted=True),
        Variant("diqam-fr", full_reference=True, weighted=False),
        Variant("wadiqam-fr", full_reference=True, weighted=True),
    )
}


def get_variant(name: str) -> Variant:
    try:
        return VARIANTS[name.lower()]
    except KeyError:
        raise ValueError(f"unknown variant {name!r}; choose one of {sorted(VARIANTS)}") from None


def _features() -> nn.Sequential:
    layers: list[nn.Module] = []
    in_ch = 3
    for i, out_ch in enumerate(CONV_CHANNELS):
        layers += [nn.Conv2d(in_ch, out_ch, 3, padding=1), nn.ReLU(inplace=True)]
        if i % 2 == 1:
            layers.append(nn.MaxPool2d(2))
        in_ch = out_ch
    return nn.Sequential(*layers)


def _head(in_dim: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(in_dim, HIDDEN_DIM),
        nn.ReLU(inplace=True),
        nn.Dropout(0.5),
        nn.Linear(HIDDEN_DIM, 1),
    )


class DeepIQA(nn.Module):
    """One of the four networks; ``forward`` maps patches to per-patch quality y and weight alpha.

    Patch-level outputs (not image scores) are the module's contract because pooling must span
    batches: a big image's patches may arrive in several forward passes (see ``scoring``).
    """

    calibration: Calibration | None
    """Raw output -> readable scale, from the weights file; the scorer applies it (not forward:
    training and the per-patch loss work on raw outputs)."""

    def __init__(self, variant: str | Variant, epsilon: float = DEFAULT_EPSILON) -> None:
        super().__init__()
        self.variant = variant if isinstance(variant, Variant) else get_variant(variant)
        self.epsilon = float(epsilon)
        self.calibration = None
        in_dim = FEATURE_DIM * (3 if self.variant.full_reference else 1)
        self.features = _features()
        self.quality = _head(in_dim)
        self.weight = _head(in_dim) if self.variant.weighted else None

    @property
    def full_reference(self) -> bool:
        return self.variant.full_reference

    @property
    def quality_output(self) -> nn.Linear:
        """The quality head's last layer: its bias is where scores start (training sets it to
        the mean label)."""
        return cast(nn.Linear, self.quality[-1])

    @property
    def weight_output(self) -> nn.Linear | None:
        """The weight head's last layer (before ReLU + epsilon); None for DIQaM."""
        return None if self.weight is None else cast(nn.Linear, self.weight[-1])

    def extract(self, patches: torch.Tensor) -> torch.Tensor:
        """(N,3,32,32) in 0..1 -> (N,512). Exposed so an FR reference's features can be reused."""
        return self.features(patches).flatten(1)

    def fuse(self, f_d: torch.Tensor, f_r: torch.Tensor | None = None) -> torch.Tensor:
        if not self.full_reference:
            return f_d
        if f_r is None:
            raise ValueError("a full-reference model needs reference features")
        return torch.cat([f_d - f_r, f_d, f_r], dim=1)

    def heads(
        self, f_d: torch.Tensor, f_r: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Features -> (y, alpha), each (N,). DIQaM's alpha is all ones (plain mean pooling)."""
        h = self.fuse(f_d, f_r)
        y = self.quality(h).squeeze(1)
        if self.weight is None:
            return y, torch.ones_like(y)
        alpha = torch.relu(self.weight(h).squeeze(1)) + self.epsilon
        return y, alpha

    def forward(
        self, distorted: torch.Tensor, reference: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        f_r = None if reference is None else self.extract(reference)
        return self.heads(self.extract(distorted), f_r)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
