"""Correlation metrics for IQA evaluation (numpy only; ties get average ranks, like scipy)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Sequence

import numpy as np


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


def plcc(a: Sequence[float], b: Sequence[float]) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def srocc(a: Sequence[float], b: Sequence[float]) -> float:
    return plcc(rankdata(np.asarray(a)), rankdata(np.asarray(b)))


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
