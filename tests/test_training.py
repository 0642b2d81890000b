import numpy as np
import pytest

from deepiqa_core import DeepIQA
from deepiqa_core.evaluation.metrics import mean_level_correlation, plcc, rankdata, srocc
from deepiqa_core.training.distortions import DISTORTIONS, LEVELS, distort
from deepiqa_core.training.trainer import Sample, TrainConfig, train
from deepiqa_core.training.weak_labels import psnr, ssim, weak_label

from .conftest import make_image


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


@pytest.mark.parametrize("variant", ["diqam-nr", "wadiqam-fr"])
def test_training_steps_run_and_keep_the_best_validation_model(variant):
    ref = make_image(64, 64, seed=2)
    rng = np.random.default_rng(0)
    samples = []
    for kind in ("gaussian_blur", "white_noise"):
        for lvl in LEVELS:
            d = distort(ref, kind, lvl, rng)
            samples.append(Sample(d, ref, weak_label(d, ref), "p", kind, lvl))
    config = TrainConfig(steps=4, eval_every=2, batch_images=2, patches_per_image=4)
    result = train(DeepIQA(variant), samples, samples, config, log=lambda r: None)
    assert [h["step"] for h in result.history] == [2, 4]
    assert result.best_step in (2, 4) and result.steps_run == 4
    assert not result.model.training
    assert result.best_val_srocc == max(h["val_srocc"] for h in result.history)
