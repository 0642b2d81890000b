"""KonIQ-10k (10,073 in-the-wild photos, MOS from crowd ratings).

Layout: ``koniq10k_scores_and_distributions.csv`` (columns ``image_name, ..., MOS, SD,
MOS_zscore``) and the images in ``1024x768/`` (or the downscaled ``512x384/``). The score is
``MOS_zscore`` (0-100, higher = better) unless ``score_column="MOS"`` (1-5) is asked for. No
references: each image is its own ``ref_id``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ._files import file_index, lookup, require
from .manifest import DatasetError, make_manifest

SCALES = {"MOS_zscore": (0.0, 100.0), "MOS": (1.0, 5.0)}
IMAGE_FOLDERS = ("1024x768", "512x384")


def read_koniq10k(root: str | Path, score_column: str = "MOS_zscore") -> pd.DataFrame:
    root = Path(root)
    if score_column not in SCALES:
        raise DatasetError(f"score_column must be one of {sorted(SCALES)}")
    scores = require(root / "koniq10k_scores_and_distributions.csv", "KonIQ-10k score file")
    table = pd.read_csv(scores)
    for column in ("image_name", score_column):
        if column not in table.columns:
            raise DatasetError(f"{scores}: missing column {column!r} (found {list(table.columns)})")
    folder = next((root / f for f in IMAGE_FOLDERS if (root / f).is_dir()), None)
    if folder is None:
        raise DatasetError(f"KonIQ-10k image folder not found: expected {root}/{IMAGE_FOLDERS[0]}")
    images = file_index(folder)
    low, high = SCALES[score_column]
    rows = [
        {
            "id": str(name),
            "uri": str(lookup(images, str(name), folder, str(scores))),
            "ref_uri": None,
            "ref_id": str(name),
            "score": float(score),
            "score_direction": "higher_better",
            "score_min": low,
            "score_max": high,
            "dataset": "koniq10k",
            "distortion": None,
            "level": None,
        }
        for name, score in zip(table["image_name"], table[score_column], strict=True)
    ]
    return make_manifest(rows)
