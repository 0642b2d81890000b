"""Ladder training parts with known answers: ranking pairs, the hinge, pooling, the weighted L1,
the drawn types, the media-library distortions, and training on kept lower-conv outputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deepiqa_core.models import DeepIQA
from deepiqa_core.seeding import rng
from deepiqa_core.training.distortions import MEDIA_DISTORTIONS, distort
from deepiqa_core.training.ladders import (
    ALWAYS,
    PRISTINE,
    ladder_batches,
    ladder_loss,
    ladder_pairs,
    ladder_types,
    patch_rows,
    pool_images,
    ranking_loss,
    render_ladder,
)
from deepiqa_core.training.trunk_cache import LowerTrunk, Top, lower_features

from .conftest import make_image, trained_like


def test_pairs_are_the_orders_a_ladder_knows():
    contents = np.array([0, 0, 0, 0, 1, 1])
    kinds = np.array([PRISTINE, "jpeg", "jpeg", "blur", PRISTINE, "jpeg"])
    levels = np.array([0, 1, 3, 2, 0, 2])
    better, worse = ladder_pairs(contents, kinds, levels)
    # pristine over every version of its own content; within a kind, lower level over higher;
    # never across contents, never across kinds (jpeg 1 vs blur 2: no known order)
    assert sorted(zip(better.tolist(), worse.tolist(), strict=True)) == [
        (0, 1), (0, 2), (0, 3), (1, 2), (4, 5),
    ]  # fmt: skip


def test_ranking_hinge_scales_its_margin_with_the_level_gap():
    scores = torch.tensor([10.0, 9.0, 7.0, 20.0])
    levels = torch.tensor([0, 1, 3, 1])
    better, worse = torch.tensor([0, 0, 1, 0]), torch.tensor([1, 2, 2, 3])
    # margins 2*1, 2*3, 2*2, 2*1; gaps 1, 3, 2, -10 -> hinges 1, 3, 2, 12
    loss = ranking_loss(scores, better, worse, levels, margin=2.0)
    assert float(loss) == pytest.approx((1 + 3 + 2 + 12) / 4)
    assert float(ranking_loss(scores, better[:0], worse[:0], levels, 2.0)) == 0.0


def test_pooling_is_the_weighted_average_per_image():
    y = torch.tensor([1.0, 3.0, 10.0, 20.0, 30.0])
    alpha = torch.tensor([1.0, 3.0, 1.0, 1.0, 2.0])
    image = torch.tensor([0, 0, 1, 1, 1])
    pooled = pool_images(y, alpha, image, 2)
    assert pooled.tolist() == pytest.approx([(1 + 9) / 4, (10 + 20 + 60) / 4])


def test_ladder_loss_weights_the_l1_and_adds_the_hinge():
    scores = torch.tensor([90.0, 80.0], requires_grad=True)
    labels = torch.tensor([100.0, 82.0])
    weights = torch.tensor([4.0, 1.0])
    pair = torch.tensor([0]), torch.tensor([1])
    loss, parts = ladder_loss(
        scores, labels, *pair, torch.tensor([0, 1]), margin=15.0, rank_weight=0.5, weights=weights
    )
    # L1 (4*10 + 1*2) / 5 = 8.4; hinge max(0, 15 - 10) = 5; total 8.4 + 0.5*5
    assert parts == {"l1": pytest.approx(8.4), "rank": pytest.approx(5.0)}
    assert loss.item() == pytest.approx(10.9)
    loss.backward()
    assert scores.grad.tolist() == pytest.approx([-0.8 - 0.5, -0.2 + 0.5])


def test_each_content_sees_the_always_types_and_its_own_draw():
    a, b = ladder_types("photo-a@c0", 0, 3), ladder_types("photo-b@c0", 0, 3)
    assert a[: len(ALWAYS)] == list(ALWAYS) and len(a) == len(set(a)) == len(ALWAYS) + 3
    assert a == ladder_types("photo-a@c0", 0, 3)  # seeded by (seed, content)
    assert a != b or a != ladder_types("photo-a@c0", 1, 3)


def test_media_distortions_get_worse_with_the_level_and_are_seeded():
    image = make_image(96, 128, seed=3)
    for kind in MEDIA_DISTORTIONS:
        errors = []
        for level in range(1, 6):
            out = distort(image, kind, level, rng(0, kind, level))
            assert out.shape == image.shape and out.dtype == np.uint8
            assert np.array_equal(out, distort(image, kind, level, rng(0, kind, level)))
            errors.append(float(np.mean((out.astype(float) - image) ** 2)))
        assert errors[0] < errors[-1], kind  # level 5 is further from the original than 1


def test_a_ladder_starts_with_its_pristine_content_labelled_100():
    image = make_image(64, 96, seed=1)
    ladder = render_ladder("p", image, ["jpeg_quality"], 0, "weak-v1")
    assert ladder.kinds == [PRISTINE] + ["jpeg_quality"] * 5
    assert ladder.levels.tolist() == [0, 1, 2, 3, 4, 5] and ladder.labels[0] == 100.0
    assert np.array_equal(ladder.images[0], image)
    assert np.all(np.diff(ladder.labels[1:]) < 0)  # this label falls along the JPEG ladder


def test_the_top_over_kept_lower_outputs_is_the_whole_network():
    model = trained_like("wadiqam-nr")
    patches = np.stack([make_image(32, 32, seed=s) for s in range(6)])
    lower = lower_features(LowerTrunk(model), patches)
    assert lower.shape == (6, 256, 2, 2)
    top = Top(model).eval()
    with torch.no_grad():
        y, alpha = top(torch.from_numpy(lower))
        x = torch.from_numpy(patches).permute(0, 3, 1, 2).float() / 255
        y_full, alpha_full = model.eval()(x)
    assert torch.allclose(y, y_full, rtol=1e-4, atol=1e-3)
    assert torch.allclose(alpha, alpha_full, rtol=1e-4, atol=1e-4)
    # Top shares the model's parameters: a step on Top is a step on the model
    assert top.upper()[0].weight is model.features[20].weight
    with pytest.raises(ValueError, match="no-reference"):
        Top(DeepIQA("wadiqam-fr"))


def test_batches_are_whole_ladders_and_steps_show_one_region_per_ladder():
    contents = np.array([0, 0, 1, 1, 1, 2])
    batches = list(ladder_batches(contents, 2, epoch=0, seed=0))
    assert sorted(np.concatenate(batches).tolist()) == list(range(6))  # each image once
    for batch in batches:  # a content is never split across batches
        for c in set(contents[batch].tolist()):
            assert set(np.nonzero(contents == c)[0].tolist()) <= set(batch.tolist())
    assert [b.tolist() for b in batches] == [
        b.tolist() for b in ladder_batches(contents, 2, epoch=0, seed=0)
    ]
    start = np.arange(0, 7 * 4, 4)  # 6 images x 4 kept patches
    rows, index = patch_rows(start, contents, np.array([2, 3, 5]), 2, step=7, seed=0)
    assert index.tolist() == [0, 0, 1, 1, 2, 2]
    assert (rows[:2] - start[2]).tolist() == (rows[2:4] - start[3]).tolist()  # same content
    assert set(rows[4:].tolist()) <= set(range(20, 24))
    all_rows, _ = patch_rows(start, contents, np.array([1]), None, step=0, seed=0)
    assert all_rows.tolist() == [4, 5, 6, 7]


def test_ranking_alone_when_the_l1_weight_is_zero():
    scores = torch.tensor([90.0, 80.0])
    pair = torch.tensor([0]), torch.tensor([1])
    args = (scores, torch.tensor([100.0, 82.0]), *pair, torch.tensor([0, 1]))
    loss, parts = ladder_loss(*args, margin=15.0, rank_weight=0.5, l1_weight=0.0)
    assert loss.item() == pytest.approx(0.5 * 5.0) and parts["l1"] == pytest.approx(6.0)
