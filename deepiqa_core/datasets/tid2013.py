"""TID2013 (3000 distorted images: 25 references x 24 types x 5 levels).

Layout: ``mos_with_names.txt`` (lines ``<MOS> <name>``, e.g. ``5.51429 i01_01_1.bmp`` =
reference 01, type 01, level 1), ``distorted_images/``, ``reference_images/I01.BMP`` ... MOS 0-9,
higher = better. Letter case of file names varies between copies and is ignored.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from ._files import file_index, lookup, require
from .manifest import DatasetError, make_manifest

TYPES = (
    "additive_gaussian_noise",
    "additive_noise_in_color_components",
    "spatially_correlated_noise",
    "masked_noise",
    "high_frequency_noise",
    "impulse_noise",
    "quantization_noise",
    "gaussian_blur",
    "image_denoising",
    "jpeg",
    "jpeg2000",
    "jpeg_transmission_errors",
    "jpeg2000_transmission_errors",
    "non_eccentricity_pattern_noise",
    "local_blockwise_distortions",
    "mean_shift",
    "contrast_change",
    "change_of_color_saturation",
    "multiplicative_gaussian_noise",
    "comfort_noise",
    "lossy_compression_of_noisy_images",
    "color_quantization_with_dither",
    "chromatic_aberrations",
    "sparse_sampling_and_reconstruction",
)
NAME = re.compile(r"^i(\d\d)_(\d\d)_(\d)\.bmp$", re.IGNORECASE)


def read_tid2013(root: str | Path) -> pd.DataFrame:
    root = Path(root)
    scores = require(root / "mos_with_names.txt", "TID2013 score file")
    distorted = file_index(root / "distorted_images")
    references = file_index(require(root / "reference_images", "TID2013 reference folder"))
    rows = []
    for line_no, line in enumerate(scores.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        match = NAME.match(parts[1]) if len(parts) == 2 else None
        if match is None:
            raise DatasetError(f"{scores}:{line_no}: expected '<MOS> iRR_TT_L.bmp', got {line!r}")
        try:
            mos = float(parts[0])
        except ValueError:
            raise DatasetError(f"{scores}:{line_no}: {parts[0]!r} is not a number") from None
        ref_no, type_no, level = (int(g) for g in match.groups())
        if not 1 <= type_no <= len(TYPES) or not 1 <= level <= 5:
            raise DatasetError(f"{scores}:{line_no}: unknown type {type_no} or level {level}")
        ref = lookup(references, f"i{ref_no:02d}.bmp", root / "reference_images", str(scores))
        rows.append(
            {
                "id": parts[1].lower(),
                "uri": str(lookup(distorted, parts[1], root / "distorted_images", str(scores))),
                "ref_uri": str(ref),
                "ref_id": f"i{ref_no:02d}",
                "score": mos,
                "score_direction": "higher_better",
                "score_min": 0.0,
                "score_max": 9.0,
                "dataset": "tid2013",
                "distortion": TYPES[type_no - 1],
                "level": level,
            }
        )
    return make_manifest(rows)
