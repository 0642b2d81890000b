"""Seeded train/validation/test splits over reference images (the paper's protocol).

Every image made from one reference lands in the same split, so a network is never tested on
content it has seen distorted differently in training (mixing them inflates results).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..seeding import rng

SPLITS = ("train", "val", "test")
DEFAULT_FRACTIONS = (0.6, 0.2, 0.2)


def split_by_reference(
    manifest: pd.DataFrame, fractions: tuple[float, float, float] = DEFAULT_FRACTIONS, seed: int = 0
) -> pd.Series:
    """A 'train'/'val'/'test' label per manifest row, drawn over its ``ref_id``.

    The distinct references are shuffled with ``seed`` and cut at the rounded fractions (the
    remainder goes to test); a fraction of 0 leaves that split empty.
    """
    if len(fractions) != 3 or any(f < 0 for f in fractions) or not np.isclose(sum(fractions), 1):
        raise ValueError(
            f"split fractions must be three non-negative numbers summing to 1, got {fractions}"
        )
    refs = np.array(sorted(manifest["ref_id"].astype(str).unique()))
    order = rng("split", seed).permutation(len(refs))
    n_train = int(round(fractions[0] * len(refs)))
    n_val = min(int(round(fractions[1] * len(refs))), len(refs) - n_train)
    part = {}
    for i, ref in enumerate(refs[order]):
        part[ref] = "train" if i < n_train else "val" if i < n_train + n_val else "test"
    return manifest["ref_id"].astype(str).map(part).rename("split")
