"""KADID-10k (10,125 distorted images: 81 references x 25 types x 5 levels).

Layout: ``dmos.csv`` (columns ``dist_img,ref_img,dmos,var``) and ``images/`` holding both the
distorted ``I01_01_01.png`` (reference 01, type 01, level 1) and the references ``I01.png``.
DMOS 1-5, higher = better (despite the name). ``KADID_TYPES`` names the 25 types; the synthetic
generator (``deepiqa_core.training.distortions``) uses the same names.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from ._files import file_index, lookup, require
from .manifest import DatasetError, make_manifest

KADID_TYPES = (
    "gaussian_blur",
    "lens_blur",
    "motion_blur",
    "color_diffusion",
    "color_shift",
    "color_quantization",
    "color_saturation_1",
    "color_saturation_2",
    "jpeg2000",
    "jpeg",
    "white_noise",
    "white_noise_color",
    "impulse_noise",
    "multiplicative_noise",
    "denoise",
    "brighten",
    "darken",
    "mean_shift",
    "jitter",
    "non_eccentricity_patch",
    "pixelate",
    "quantization",
    "color_block",
    "high_sharpen",
    "contrast_change",
)
NAME = re.compile(r"^I(\d\d)_(\d\d)_(\d\d)\.png$", re.IGNORECASE)
COLUMNS = ("dist_img", "ref_img", "dmos")


def read_kadid10k(root: str | Path) -> pd.DataFrame:
    root = Path(root)
    scores = require(root / "dmos.csv", "KADID-10k score file")
    table = pd.read_csv(scores)
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise DatasetError(f"{scores}: missing columns {missing} (found {list(table.columns)})")
    images = file_index(root / "images")
    rows = []
    for line_no, rec in enumerate(table.itertuples(index=False), 2):
        match = NAME.match(str(rec.dist_img))
        if match is None:
            raise DatasetError(
                f"{scores}:{line_no}: {rec.dist_img!r} is not named I<ref>_<type>_<level>.png"
            )
        _, type_no, level = (int(g) for g in match.groups())
        if not 1 <= type_no <= len(KADID_TYPES) or not 1 <= level <= 5:
            raise DatasetError(f"{scores}:{line_no}: unknown type {type_no} or level {level}")
        ref = lookup(images, str(rec.ref_img), root / "images", str(scores))
        rows.append(
            {
                "id": str(rec.dist_img),
                "uri": str(lookup(images, str(rec.dist_img), root / "images", str(scores))),
                "ref_uri": str(ref),
                "ref_id": ref.stem,
                "score": float(rec.dmos),
                "score_direction": "higher_better",
                "score_min": 1.0,
                "score_max": 5.0,
                "dataset": "kadid10k",
                "distortion": KADID_TYPES[type_no - 1],
                "level": level,
            }
        )
    return make_manifest(rows)
