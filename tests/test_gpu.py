"""GPU contracts, run where a CUDA GPU is visible (CI has none: these skip there; run them with
``pytest tests/test_gpu.py`` on a GPU machine, beside ``benchmarks/gpu_checks.py``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deepiqa_core import Scorer, decode_image
from deepiqa_core.defaults import SAMPLES, default_weights
from deepiqa_core.weights import load_weights

from .conftest import make_image, trained_like

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU here")
SIZES = [(384, 512), (100, 70), (64, 64), (33, 250), (230, 40), (1080, 1920)]


def _scores(scorer: Scorer, images, refs=None) -> np.ndarray:
    return np.array([r.score for r in scorer.score(images, refs)])


@pytest.mark.parametrize("variant", ["wadiqam-nr", "wadiqam-fr"])
def test_gpu_fp32_is_ieee_exact_against_cpu_and_batch_independent(variant: str) -> None:
    model = trained_like(variant, seed=1)
    images = [make_image(h, w, seed=i) for i, (h, w) in enumerate(SIZES)]
    refs = [make_image(h, w, seed=50 + i) for i, (h, w) in enumerate(SIZES)]
    refs = refs if model.full_reference else None
    cpu = _scores(Scorer(model, device="cpu"), images, refs)
    gpu = Scorer(model, device="cuda", precision="fp32")
    together = _scores(gpu, images, refs)
    alone = np.array(
        [gpu.score_one(im, None if refs is None else refs[i]).score for i, im in enumerate(images)]
    )
    assert np.max(np.abs(together - cpu)) <= 1e-4
    assert np.max(np.abs(together - alone)) <= 1e-4


@pytest.mark.parametrize("with_ref", [False, True])
def test_gpu_bf16_is_batch_independent_and_near_fp32(with_ref: bool) -> None:
    model, _ = load_weights(default_weights(with_ref).read_bytes())
    # the network's arithmetic, on its raw scale: the calibration multiplies any difference by
    # its slope (up to ~11 for the defaults; the model card gives bf16's effect on that scale)
    model.calibration = None
    photos = [decode_image(p.read_bytes()) for p in sorted((SAMPLES / "nr").iterdir())]
    images = photos + [make_image(h, w, seed=i) for i, (h, w) in enumerate(SIZES)]
    refs = images if with_ref else None  # FR: each against itself
    exact = _scores(Scorer(model, device="cpu"), images, refs)
    bf16 = Scorer(model, device="cuda", precision="bf16")
    together = _scores(bf16, images, refs)
    alone = np.array(
        [bf16.score_one(im, None if refs is None else refs[i]).score for i, im in enumerate(images)]
    )
    assert bf16.compute.endswith("/bf16")
    assert np.max(np.abs(together - exact)) <= 0.5
    assert np.max(np.abs(together - alone)) <= 1e-3  # fixed bucket shapes
