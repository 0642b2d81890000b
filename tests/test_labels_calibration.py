"""The weak-v1 label's parts and the cal-v1 calibration, with answers worked out by hand."""

import numpy as np
import pytest
import torch

from deepiqa_core import DeepIQA, Scorer, WeightsMeta, load_weights, save_weights
from deepiqa_core.calibration import Calibration, fit_calibration
from deepiqa_core.errors import WeightsError
from deepiqa_core.training.synthetic import generate_local
from deepiqa_core.training.weak_labels import (
    chroma_similarity,
    gmsd,
    luma,
    ms_ssim,
    weak_label,
)

from .conftest import encode, make_image

C1 = (0.01 * 255) ** 2


def test_weak_v1_known_answer_on_flat_images():
    # flat grey 100 vs 110: no variance (contrast-structure 1 at every scale), no gradients
    # (GMSD 0), no chroma (I = Q = 0: similarity 1); 40 px fit two MS-SSIM scales, so only the
    # coarse scale's luminance term remains, raised to its renormalised exponent
    a, b = np.full((40, 40, 3), 100, np.uint8), np.full((40, 40, 3), 110, np.uint8)
    luminance = (2 * 100 * 110 + C1) / (100**2 + 110**2 + C1)
    expected_ms_ssim = luminance ** (0.2856 / (0.0448 + 0.2856))
    assert ms_ssim(luma(b), luma(a)) == pytest.approx(expected_ms_ssim, abs=1e-12)
    assert gmsd(luma(b), luma(a)) == pytest.approx(0.0, abs=1e-12)
    assert chroma_similarity(b, a) == pytest.approx(1.0)
    expected = 100 * (0.4 * expected_ms_ssim + 0.4 + 0.2)
    assert weak_label(b, a) == pytest.approx(expected, abs=1e-9)
    assert weak_label(b, a) == pytest.approx(99.8435, abs=1e-4)


def test_weak_v1_parts_on_known_cases():
    img = make_image(96, 96, seed=5)
    y = luma(img)
    assert weak_label(img, img) == pytest.approx(100.0)
    assert ms_ssim(y, y) == pytest.approx(1.0) and gmsd(y, y) == pytest.approx(0.0)
    # an edge against a flat image: GMS is 1 where both are flat, c/(g^2+c) on the edge
    edge = np.zeros((20, 20))
    edge[:, 10:] = 90.0
    flat = np.zeros((20, 20))
    assert gmsd(edge, flat) > 0.1
    # chroma: pure red vs pure green (I of opposite signs) scores 0 after clipping
    red, green = np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8, 3), np.uint8)
    red[..., 0], green[..., 1] = 255, 255
    assert chroma_similarity(red, green) == 0.0
    # stronger noise, lower label; colour removed is seen by v1 but not by luma-only terms
    noisy = [
        np.clip(img + np.random.default_rng(0).normal(0, s, img.shape), 0, 255).astype(np.uint8)
        for s in (5, 20, 60)
    ]
    labels = [weak_label(n, img) for n in noisy]
    assert labels[0] > labels[1] > labels[2]
    grey = np.repeat(luma(img)[..., None], 3, axis=2).round().astype(np.uint8)
    assert chroma_similarity(grey, img) < 0.9 and weak_label(grey, img) < 98


def test_synthetic_rows_name_their_label_version(tmp_path):
    photo = tmp_path / "cat.png"
    photo.write_bytes(encode(make_image(60, 90, seed=4)))
    v0 = generate_local(
        [str(photo)], tmp_path / "a", long_side=60, distortions=["jpeg"], label="weak-v0"
    )
    v1 = generate_local([str(photo)], tmp_path / "b", long_side=60, distortions=["jpeg"])
    assert set(v0["dataset"]) == {"synthetic-weak-v0"} and set(v1["dataset"]) == {
        "synthetic-weak-v1"
    }
    assert v0["score"].tolist() != v1["score"].tolist()
    with pytest.raises(ValueError, match="unknown label version"):
        generate_local([str(photo)], tmp_path / "c", distortions=["jpeg"], label="weak-v9")


def test_calibration_fit_has_known_answers():
    raw = {0: [10, 12, 14], 1: [8], 2: [6], 3: [4], 4: [2], 5: [0]}
    cal = fit_calibration(raw)
    assert cal.raw == (0, 2, 4, 6, 8, 12) and cal.score == (15, 30, 45, 60, 75, 90)
    assert cal(12.0) == 90.0 and cal(7.0) == 67.5
    # tails: 100 - 10 exp(-3.75 dx / 10) above 12 (slope 3.75 there), 15 exp(7.5 dx / 15) below 0
    assert cal(13.0) == pytest.approx(100 - 10 * np.exp(-0.375))
    assert cal(-2.0) == pytest.approx(15 * np.exp(-1.0))
    far = [cal(v) for v in (-40.0, -20.0, 30.0, 40.0)]
    assert 0 < far[0] < far[1] < 1e-3 and 99.98 < far[2] < far[3] < 100  # no ties at the ends
    eps = 1e-6
    for knot in (0.0, 12.0):  # continuous, with the end segment's slope, at both end points
        assert cal(knot + eps) - cal(knot - eps) == pytest.approx(
            2 * eps * 7.5 if knot == 0 else 2 * eps * 3.75, rel=1e-3
        )
    out = cal(np.array([0.0, 12.0], np.float32))
    assert out.dtype == np.float32 and out.tolist() == [15.0, 90.0]
    # level 1 scores above pristine: the two are pooled into one point (means of both)
    pooled = fit_calibration({0: [5], 1: [6], 2: [4], 3: [3], 4: [2], 5: [1]})
    assert pooled.raw == (1, 2, 3, 4, 5.5) and pooled.score == (15, 30, 45, 60, 82.5)
    with pytest.raises(ValueError, match="do not separate"):
        fit_calibration({0: [1], 5: [2]})
    with pytest.raises(ValueError, match="must increase"):
        Calibration((1.0, 1.0), (0.0, 1.0))


def test_calibration_travels_in_the_weights_and_applies_to_scores_and_maps(tmp_path):
    torch.manual_seed(0)
    model = DeepIQA("wadiqam-nr")
    raw_meta = WeightsMeta(variant="wadiqam-nr", score_direction="higher_better")
    save_weights(model, tmp_path / "raw.safetensors", raw_meta)
    cal = Calibration((-1.0, 0.0, 1.0), (10.0, 50.0, 60.0))
    meta = WeightsMeta(
        variant="wadiqam-nr", score_direction="higher_better", score_range=[0.0, 100.0],
        calibration=cal.to_dict(),
    )  # fmt: skip
    save_weights(model, tmp_path / "cal.safetensors", meta)
    image = make_image(96, 64, seed=2)
    plain = Scorer(load_weights(tmp_path / "raw.safetensors")[0]).score(
        [image], return_patches=True
    )[0]
    loaded, loaded_meta = load_weights(tmp_path / "cal.safetensors")
    assert loaded_meta.calibration == cal.to_dict() and loaded.calibration == cal
    calibrated = Scorer(loaded).score([image], return_patches=True)[0]
    assert calibrated.score == pytest.approx(cal(plain.score), abs=1e-6)
    assert np.allclose(calibrated.patches.quality, cal(plain.patches.quality), atol=1e-5)
    assert np.array_equal(calibrated.patches.weight, plain.patches.weight)
    bad = (
        WeightsMeta(variant="wadiqam-nr")
        .to_json()
        .replace('"calibration": null', '"calibration": {"raw": [1]}')
    )
    with pytest.raises(WeightsError, match="unreadable calibration"):
        WeightsMeta.from_json(bad)
