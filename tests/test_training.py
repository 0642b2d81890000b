from pathlib import Path

import numpy as np
import pytest

from deepiqa_core.datasets import KADID_TYPES
from deepiqa_core.evaluation.metrics import mean_level_correlation, plcc, rankdata, srocc
from deepiqa_core.imaging import read_image
from deepiqa_core.training.distortions import (
    DISTORTIONS,
    LEVELS,
    distort,
    lab_to_rgb,
    rgb_to_lab,
)
from deepiqa_core.training.synthetic import generate_local
from deepiqa_core.training.weak_labels import psnr, ssim, weak_label

from .conftest import encode, make_image


def test_rank_correlations_have_known_answers():
    assert rankdata(np.array([10, 20, 20, 5])).tolist() == [2.0, 3.5, 3.5, 1.0]
    assert srocc([1, 2, 3, 4, 5], [5, 6, 7, 8, 7]) == pytest.approx(8 / np.sqrt(95))
    assert plcc([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)
    assert srocc([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    corr = mean_level_correlation([9, 8, 7, 1, 2, 3], [1, 2, 3, 1, 2, 3], list("aaabbb"))
    assert corr == pytest.approx(0.0)


def test_ssim_and_psnr_known_values():
    a = make_image(48, 48).astype(np.float64)[..., 0]
    assert ssim(a, a) == pytest.approx(1.0)
    assert psnr(a, a) == 100.0
    assert psnr(a, a + 10) == pytest.approx(10 * np.log10(255**2 / 100))


@pytest.mark.parametrize("kind", sorted(DISTORTIONS))
def test_each_distortion_is_deterministic_and_worse_with_level(kind):
    ref = make_image(64, 64, seed=1)
    out = [distort(ref, kind, lvl, np.random.default_rng(0)) for lvl in LEVELS]
    again = distort(ref, kind, 3, np.random.default_rng(0))
    assert np.array_equal(out[2], again)
    assert all(o.shape == ref.shape and o.dtype == np.uint8 for o in out)
    labels = [weak_label(o, ref) for o in out]
    assert labels[0] > labels[-1]
    assert all(0 <= v <= 100 for v in labels)
    assert weak_label(ref, ref) == pytest.approx(100.0)


def test_distortions_have_known_answers():
    flat = np.full((64, 64, 3), 100, np.uint8)
    rng = np.random.default_rng(0)
    assert (distort(flat, "quantization", 5, rng) == 96).all()  # 4 steps: floor(100/64)=1 -> 96
    assert (distort(flat, "mean_shift", 1, np.random.default_rng(0))[0, 0] == 85).all()
    white, red = np.full((1, 1, 3), 255, np.uint8), np.array([[[255, 0, 0]]], np.uint8)
    assert rgb_to_lab(white)[0, 0] == pytest.approx([100.0, 0.0, 0.0], abs=0.01)
    assert rgb_to_lab(red)[0, 0] == pytest.approx([53.24, 80.09, 67.20], abs=0.05)
    img = make_image(48, 48, seed=3)
    assert np.abs(lab_to_rgb(rgb_to_lab(img)).astype(int) - img).max() <= 1
    shifted = distort(img, "color_shift", 5, np.random.default_rng(1))
    assert (shifted[..., [0, 2]] == img[..., [0, 2]]).all()  # only green moves
    assert not (shifted[..., 1] == img[..., 1]).all()
    noisy = distort(img, "impulse_noise", 5, np.random.default_rng(2))
    changed = (noisy != img).any(-1).mean()
    assert 0.15 < changed < 0.25  # p = 0.2 of the pixels set to black or white
    assert list(DISTORTIONS) == list(KADID_TYPES) and len(DISTORTIONS) == 25


def test_synthetic_rows_depend_only_on_seed_photo_type_and_level(tmp_path):
    photo = tmp_path / "cat.png"
    photo.write_bytes(encode(make_image(60, 90, seed=4)))
    a = generate_local([str(photo)], tmp_path / "a", long_side=60, distortions=["jitter", "jpeg"])
    b = generate_local([str(photo)], tmp_path / "b", long_side=60, distortions=["jpeg"], workers=2)
    one = a[a["distortion"] == "jpeg"].reset_index(drop=True)
    assert one["score"].tolist() == b["score"].tolist()
    assert all(
        Path(x).read_bytes() == Path(y).read_bytes()
        for x, y in zip(one["uri"], b["uri"], strict=True)
    )
    assert a["id"].tolist()[:2] == ["cat__jitter__1.png", "cat__jitter__2.png"]
    assert (tmp_path / "a/references/cat.png").exists() and len(a) == 10
    assert read_image(a["ref_uri"][0]).shape == (40, 60, 3)  # long side resized to 60
    with pytest.raises(ValueError, match="unknown distortion types"):
        generate_local([str(photo)], tmp_path / "c", distortions=["rain"])


def test_weak_label_v0_known_answer_on_flat_images():
    # flat 100 vs flat 110: variances are 0, so SSIM is its luminance term alone everywhere
    a, b = np.full((40, 40, 3), 100, np.uint8), np.full((40, 40, 3), 110, np.uint8)
    c1 = (0.01 * 255) ** 2
    ssim_value = (2 * 100 * 110 + c1) / (100**2 + 110**2 + c1)
    psnr_value = 10 * np.log10(255**2 / 100)
    expected = 100 * (0.5 * ssim_value + 0.5 * (psnr_value - 10) / 40)
    assert weak_label(b, a, "weak-v0") == pytest.approx(expected, abs=1e-9)
    assert weak_label(b, a, "weak-v0") == pytest.approx(72.4373, abs=1e-4)
