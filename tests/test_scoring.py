import numpy as np
import pytest
import torch

from deepiqa_core import Scorer, SizeMismatchError, grid_for, pool
from deepiqa_core.patches import cut_grid

from .conftest import make_image, trained_like

SIZES = [(384, 512), (100, 70), (64, 64), (33, 250), (230, 40)]


@pytest.fixture(scope="module")
def nr_scorer() -> Scorer:
    return Scorer(trained_like("wadiqam-nr"), device="cpu")


@pytest.fixture(scope="module")
def fr_scorer() -> Scorer:
    return Scorer(trained_like("wadiqam-fr", seed=3), device="cpu")


def _eager_score(model, image, reference=None, stride=32) -> float:
    """Independent path: eager model over every grid patch at once, then pooled."""
    grid = grid_for(image.shape[0], image.shape[1], stride)
    d = cut_grid(torch.from_numpy(image), grid, 0, grid.rows)
    r = None if reference is None else cut_grid(torch.from_numpy(reference), grid, 0, grid.rows)
    with torch.no_grad():
        y, alpha = model.eval()(d, r)
    return pool(y, alpha)


def test_scores_vary_between_images_so_the_checks_below_mean_something(nr_scorer) -> None:
    scores = [
        r.score for r in nr_scorer.score([make_image(h, w, i) for i, (h, w) in enumerate(SIZES)])
    ]
    assert np.std(scores) > 1e-3


def test_score_equals_the_eager_network_pooled_over_the_full_grid(nr_scorer) -> None:
    image = make_image(100, 130, seed=4)
    result = nr_scorer.score_one(image)
    assert result.num_patches == 3 * 4
    assert result.score == pytest.approx(_eager_score(nr_scorer.model, image), abs=1e-5)


@pytest.mark.parametrize("onednn", [True, False])
def test_score_does_not_depend_on_batch_contents(nr_scorer, onednn) -> None:
    scorer = Scorer(nr_scorer.model, device="cpu", onednn=onednn)
    images = [make_image(h, w, seed=i) for i, (h, w) in enumerate(SIZES)]
    together = [r.score for r in scorer.score(images)]
    alone = [scorer.score_one(im).score for im in images]
    reversed_batch = [r.score for r in scorer.score(images[::-1])][::-1]
    assert np.max(np.abs(np.array(together) - alone)) <= 1e-5
    assert np.max(np.abs(np.array(reversed_batch) - alone)) <= 1e-5


@pytest.mark.parametrize("budget", [1, 7, 16, 100])
def test_patch_budget_bounds_batches_without_changing_scores(nr_scorer, budget) -> None:
    images = [make_image(h, w, seed=i) for i, (h, w) in enumerate(SIZES)]
    reference = [r.score for r in nr_scorer.score(images)]
    small = Scorer(nr_scorer.model, device="cpu", patch_budget=budget)
    seen: list[int] = []
    inner = small._extract
    small._extract = lambda p: (seen.append(len(p)), inner(p))[1]
    scores = [r.score for r in small.score(images)]
    assert max(seen) <= budget
    assert sum(seen) == sum(grid_for(h, w).count for h, w in SIZES)
    assert np.max(np.abs(np.array(scores) - reference)) <= 1e-5


def test_onednn_cpu_path_matches_eager(nr_scorer) -> None:
    image = make_image(96, 160, seed=2)
    eager = Scorer(nr_scorer.model, device="cpu", onednn=False)
    assert nr_scorer.score_one(image).score == pytest.approx(eager.score_one(image).score, abs=1e-6)


def test_per_patch_outputs_pool_to_the_image_score(nr_scorer) -> None:
    image = make_image(100, 130, seed=5)
    result = nr_scorer.score_one(image, return_patches=True)
    pm = result.patches
    assert pm is not None and pm.quality.shape == (12,) and pm.weight.shape == (12,)
    assert (pm.grid.rows, pm.grid.cols) == (3, 4)
    assert np.all(pm.weight > 0) and np.std(pm.quality) > 0
    y, alpha = pm.quality.astype(np.float64), pm.weight.astype(np.float64)
    assert result.score == pytest.approx(float(np.sum(y * alpha) / np.sum(alpha)), rel=1e-12)
    ys, xs = pm.positions()
    assert (ys[5], xs[5]) == (32, 32)


def test_overlapping_stride_scores_more_patches(nr_scorer) -> None:
    image = make_image(64, 96, seed=6)
    dense = Scorer(nr_scorer.model, device="cpu", stride=16).score_one(image)
    assert dense.num_patches == 3 * 5
    assert dense.score == pytest.approx(_eager_score(nr_scorer.model, image, stride=16), abs=1e-5)


def test_full_reference_score_matches_eager(fr_scorer) -> None:
    ref = make_image(96, 128, seed=7)
    dist = np.clip(ref.astype(int) + 40, 0, 255).astype(np.uint8)
    result = fr_scorer.score_one(dist, ref)
    assert result.score == pytest.approx(_eager_score(fr_scorer.model, dist, ref), abs=1e-5)


def test_shared_reference_is_featurised_once(fr_scorer) -> None:
    ref = make_image(96, 128, seed=8)
    dists = [np.clip(ref.astype(int) + k, 0, 255).astype(np.uint8) for k in (10, 30, 60)]
    seen: list[int] = []
    scorer = Scorer(fr_scorer.model, device="cpu")
    inner = scorer._extract
    scorer._extract = lambda p: (seen.append(len(p)), inner(p))[1]
    shared = [r.score for r in scorer.score(dists, [ref, ref, ref])]
    assert sum(seen) == 12 * 4  # three distorted grids + one reference grid
    alone = [fr_scorer.score_one(d, ref.copy()).score for d in dists]
    assert np.max(np.abs(np.array(shared) - alone)) <= 1e-5
    feats = scorer.reference_features(ref)
    seen.clear()
    reused = [r.score for r in scorer.score(dists, [feats] * 3)]
    assert sum(seen) == 12 * 3
    assert np.max(np.abs(np.array(reused) - alone)) <= 1e-5


def test_size_mismatch_is_refused_before_any_compute(fr_scorer) -> None:
    with pytest.raises(SizeMismatchError) as err:
        fr_scorer.score([make_image(64, 64)], [make_image(64, 96)])
    assert err.value.code == "size_mismatch"


def test_model_kind_and_reference_arguments_must_agree(nr_scorer, fr_scorer) -> None:
    with pytest.raises(ValueError, match="no-reference"):
        nr_scorer.score([make_image(64, 64)], [make_image(64, 64)])
    with pytest.raises(ValueError, match="one reference per image"):
        fr_scorer.score([make_image(64, 64)])


def test_inputs_must_be_uint8_rgb(nr_scorer) -> None:
    with pytest.raises(ValueError, match="uint8"):
        nr_scorer.score([np.zeros((64, 64, 3), dtype=np.float32)])


def test_scores_are_identical_across_repeated_runs(nr_scorer) -> None:
    image = make_image(200, 150, seed=9)
    assert nr_scorer.score_one(image).score == nr_scorer.score_one(image).score
