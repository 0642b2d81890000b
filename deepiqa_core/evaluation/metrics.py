"""Correlation and error metrics for IQA evaluation, in numpy (ties get average ranks and
Kendall's tau-b, as scipy.stats does; tests check them against scipy on fixed arrays)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Sequence

import numpy as np
from numpy.typing import ArrayLike


def rankdata(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x))
    sorted_x = x[order]
    start = 0
    for end in range(1, len(x) + 1):
        if end == len(x) or sorted_x[end] != sorted_x[start]:
            ranks[order[start:end]] = (start + end + 1) / 2.0
            start = end
    return ranks


def plcc(a: ArrayLike, b: ArrayLike) -> float:
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if len(x) < 2 or x.std() == 0 or y.std() == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def srocc(a: ArrayLike, b: ArrayLike) -> float:
    return plcc(rankdata(np.asarray(a)), rankdata(np.asarray(b)))


def krocc(a: ArrayLike, b: ArrayLike, chunk: int = 1024) -> float:
    """Kendall's tau-b. O(n^2) pair signs, computed in row chunks (10k images: about a second)."""
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    n = len(x)
    if n < 2:
        return float("nan")
    concordance = 0.0
    for start in range(0, n, chunk):
        da = np.sign(x[start : start + chunk, None] - x[None, :])
        db = np.sign(y[start : start + chunk, None] - y[None, :])
        concordance += float((da * db).sum())
    concordance /= 2  # every pair was counted from both ends

    def tied_pairs(x: np.ndarray) -> float:
        _, counts = np.unique(x, return_counts=True)
        return float((counts * (counts - 1) / 2).sum())

    pairs = n * (n - 1) / 2
    denominator = np.sqrt((pairs - tied_pairs(x)) * (pairs - tied_pairs(y)))
    return float(concordance / denominator) if denominator > 0 else float("nan")


def rmse(a: ArrayLike, b: ArrayLike) -> float:
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.sqrt(np.mean((x - y) ** 2))) if len(x) else float("nan")


def mean_level_correlation(
    scores: Sequence[float], levels: Sequence[int], groups: Sequence[Hashable]
) -> float:
    """Mean Spearman correlation between score and distortion level within each group
    (e.g. each (source image, distortion type)); quality should fall as level rises (-1)."""
    by_group: dict[Hashable, list[tuple[float, int]]] = defaultdict(list)
    for s, lvl, g in zip(scores, levels, groups, strict=True):
        by_group[g].append((s, lvl))
    values = [srocc([s for s, _ in v], [lvl for _, lvl in v]) for v in by_group.values()]
    values = [v for v in values if not np.isnan(v)]
    return float(np.mean(values)) if values else float("nan")
