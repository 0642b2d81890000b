"""Ladders: one content at every level of a distortion, and the ranking they teach for free.

A ladder is a pristine content and its versions at levels 1-5 of each distortion type. The
order within a ladder is known without any label (pristine > level 1 > ... > level 5), which is
what an audit needs most: the same photo scored lower when it got worse. RankIQA (Liu, van de
Weijer, Bagdanov, ICCV 2017) trains no-reference networks from such pairs; here a pairwise
hinge over each ladder (``ranking_loss``) sits beside the L1 on the weak label
(``ladder_loss``), and batches are whole ladders so every pair is in one batch.

Types per content (``ladder_types``): the ones a media library has and the key KADID types,
always (``ALWAYS``), plus ``others`` of the remaining KADID types drawn per content, so all 25
are seen without paying for all of them on every content.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..seeding import rng
from .distortions import DISTORTIONS, LEVELS, MEDIA_DISTORTIONS, distort
from .synthetic import level_rng
from .weak_labels import weak_label

KEY_TYPES = (
    "jpeg",
    "jpeg2000",
    "gaussian_blur",
    "lens_blur",
    "motion_blur",
    "white_noise",
    "pixelate",
)
ALWAYS = KEY_TYPES + tuple(MEDIA_DISTORTIONS)
PRISTINE = "pristine"  # the rung of level 0
PRISTINE_LABEL = 100.0  # an undistorted image's weak label, in every version


@dataclass(frozen=True)
class Ladder:
    """A content's rungs: images (uint8), their kinds (``PRISTINE`` for level 0), levels and
    weak labels; row 0 is the pristine content."""

    images: list[np.ndarray]
    kinds: list[str]
    levels: np.ndarray
    labels: np.ndarray


def ladder_types(content: str, seed: int, others: int) -> list[str]:
    """``ALWAYS`` plus ``others`` of the remaining KADID types, drawn by (seed, content)."""
    rest = [k for k in DISTORTIONS if k not in ALWAYS]
    drawn = rng(seed, "ladder-types", content).choice(len(rest), min(others, len(rest)), False)
    return list(ALWAYS) + [rest[i] for i in sorted(drawn)]


def render_ladder(
    content: str,
    image: np.ndarray,
    kinds: Sequence[str],
    seed: int,
    label: str,
    levels: Sequence[int] = LEVELS,
) -> Ladder:
    """The pristine ``image`` and every (kind, level), seeded as ``deepiqa synthesize`` seeds
    them, each with its weak label against ``image``."""
    images, names, lv, labels = [image], [PRISTINE], [0], [PRISTINE_LABEL]
    for kind in kinds:
        for level in levels:
            out = distort(image, kind, level, level_rng(seed, content, kind, level))
            images.append(out)
            names.append(kind)
            lv.append(level)
            labels.append(weak_label(out, image, label))
    return Ladder(images, names, np.asarray(lv, np.int64), np.asarray(labels, np.float32))


def ladder_pairs(
    contents: np.ndarray, kinds: np.ndarray, levels: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (better, worse) the ladders order: the same content, and either the same
    kind at a lower level, or the pristine content (level 0) against any distorted version."""
    same = contents[:, None] == contents[None, :]
    lower = levels[:, None] < levels[None, :]
    same_kind = kinds[:, None] == kinds[None, :]
    pristine = (levels == 0)[:, None]
    better, worse = np.nonzero(same & lower & (same_kind | pristine))
    return better, worse


def pool_images(
    y: torch.Tensor, alpha: torch.Tensor, image_of_patch: torch.Tensor, images: int
) -> torch.Tensor:
    """Per-image weighted averages sum(alpha*y)/sum(alpha) (the WaDIQaM pooling), (images,)."""
    num = y.new_zeros(images).index_add_(0, image_of_patch, alpha * y)
    den = y.new_zeros(images).index_add_(0, image_of_patch, alpha)
    return num / den


def ranking_loss(
    scores: torch.Tensor,
    better: torch.Tensor,
    worse: torch.Tensor,
    levels: torch.Tensor,
    margin: float,
) -> torch.Tensor:
    """Mean hinge ``max(0, margin * steps - (s_better - s_worse))`` over the pairs, where
    ``steps`` is the pair's level difference: two levels apart should be twice as far."""
    if better.numel() == 0:
        return scores.new_zeros(())
    steps = (levels[worse] - levels[better]).to(scores.dtype)
    return torch.relu(margin * steps - (scores[better] - scores[worse])).mean()


def ladder_loss(
    scores: torch.Tensor,
    labels: torch.Tensor,
    better: torch.Tensor,
    worse: torch.Tensor,
    levels: torch.Tensor,
    *,
    margin: float,
    rank_weight: float,
    weights: torch.Tensor | None = None,
    l1_weight: float = 1.0,
) -> tuple[torch.Tensor, dict[str, float]]:
    """``l1_weight`` x the L1 to the weak label (a weighted mean with ``weights``, e.g.
    pristine images up) plus ``rank_weight`` x the ladder hinge; returns the parts too.
    ``l1_weight=0``: ranking alone (the label's offsets then do not pull the scale)."""
    error = (scores - labels).abs()
    l1 = error.mean() if weights is None else (weights * error).sum() / weights.sum()
    rank = ranking_loss(scores, better, worse, levels, margin)
    total = l1_weight * l1 + rank_weight * rank
    return total, {"l1": float(l1.detach()), "rank": float(rank.detach())}


def ladder_batches(
    contents: np.ndarray, contents_per_batch: int, epoch: int, seed: int
) -> Iterator[np.ndarray]:
    """Image indices per batch: whole ladders (every ranking pair inside one batch),
    ``contents_per_batch`` contents each, shuffled by (seed, epoch)."""
    order = rng(seed, "ladder-batches", epoch).permutation(int(contents.max()) + 1)
    for i in range(0, len(order), contents_per_batch):
        yield np.nonzero(np.isin(contents, order[i : i + contents_per_batch]))[0]


def patch_rows(
    start: np.ndarray,
    contents: np.ndarray,
    images: np.ndarray,
    per_image: int | None,
    step: int,
    seed: int,
) -> tuple[np.ndarray, torch.Tensor]:
    """The patch rows of ``images`` for one step (image i's rows are ``start[i]:start[i+1]``)
    and each row's position among ``images``: ``per_image`` of each image's rows (all with
    None), drawn by (seed, step, content), so every rung of a ladder shows the same regions."""
    counts = np.diff(start)[images]
    take = np.minimum(counts, per_image or counts.max())
    rows = []
    for i, n, k in zip(images, counts, take, strict=True):
        chosen = rng(seed, "step-patches", step, int(contents[i])).permutation(n)[:k]
        rows.append(start[i] + np.sort(chosen))
    index = torch.from_numpy(np.repeat(np.arange(len(images)), take))
    return np.concatenate(rows), index
