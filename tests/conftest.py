"""Shared fixtures: small deterministic images and weights files the tests make themselves."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from deepiqa_core import DeepIQA, WeightsMeta, save_weights


def make_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth-plus-texture RGB image (not pure noise, so distortions change it visibly)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack(
        [128 + 100 * np.sin(xx / (7 + c) + yy / (11 + 2 * c) + seed) for c in range(3)], axis=-1
    )
    return np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)


def encode(array: np.ndarray, fmt: str = "PNG", **kwargs: object) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def trained_like(variant: str, seed: int = 0) -> DeepIQA:
    """A randomly initialised network whose outputs vary between patches and images.

    PyTorch's default init shrinks activations layer by layer, so ten convs later every image
    scores the same and tests of pooling and batching would pass vacuously. He-initialised
    layers keep the signal; a scaled quality head puts scores on a 0-100-like scale (where
    float32 rounding is largest); a positive weight-head bias keeps alphas above epsilon.
    """
    torch.manual_seed(seed)
    model = DeepIQA(variant)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.Conv2d | torch.nn.Linear):
                torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                m.bias.zero_()
        model.quality[3].weight.mul_(100.0)  # scores spread over tens, like DMOS
        model.quality[3].bias.fill_(50.0)
        if model.weight is not None:
            model.weight[3].bias.fill_(1.0)
    return model.eval()


@pytest.fixture(scope="session")
def weights_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One weights file per variant, written once per test session."""
    folder = tmp_path_factory.mktemp("weights")
    for i, variant in enumerate(("diqam-nr", "wadiqam-nr", "diqam-fr", "wadiqam-fr")):
        meta = WeightsMeta(variant=variant, score_direction="higher_better", training_data="test")
        save_weights(trained_like(variant, seed=i), folder / f"{variant}.safetensors", meta)
    return folder
