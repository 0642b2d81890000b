"""LIVE In the Wild Image Quality Challenge (CLIVE: 1,162 authentically distorted photos).

Layout (the ``ChallengeDB_release`` folder, or its parent): ``Images/`` and
``Data/AllImages_release.mat`` (``AllImages_release``: file names) with
``Data/AllMOS_release.mat`` (``AllMOS_release``: MOS 0-100, higher = better), in the same
order. The release's first 7 entries are its training examples (``Images/trainingImages/``);
they are left out unless asked for, giving the 1,162 images papers report on. No references:
each image is its own ``ref_id``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ._files import file_index, lookup, mat_vector
from .manifest import DatasetError, make_manifest

TRAINING_EXAMPLES = 7


def read_clive(root: str | Path, include_training_examples: bool = False) -> pd.DataFrame:
    root = Path(root)
    if (root / "ChallengeDB_release").is_dir():
        root = root / "ChallengeDB_release"
    names_file = root / "Data" / "AllImages_release.mat"
    mos_file = root / "Data" / "AllMOS_release.mat"
    for path in (names_file, mos_file):
        if not path.exists():
            raise DatasetError(f"CLIVE file not found: expected {path}")
    names = mat_vector(names_file, "AllImages_release")
    mos = mat_vector(mos_file, "AllMOS_release")
    if len(names) != len(mos):
        raise DatasetError(f"{names_file} has {len(names)} names but {mos_file} {len(mos)} scores")
    images = file_index(root / "Images")
    training = (
        file_index(root / "Images" / "trainingImages")
        if (root / "Images" / "trainingImages").is_dir()
        else {}
    )
    rows = []
    for i, (name, score) in enumerate(zip(names, mos, strict=True)):
        is_example = i < TRAINING_EXAMPLES
        if is_example and not include_training_examples:
            continue
        index = training if is_example and name.lower() in training else images
        folder = root / "Images" / ("trainingImages" if index is training else "")
        rows.append(
            {
                "id": name,
                "uri": str(lookup(index, name, folder, str(names_file))),
                "ref_uri": None,
                "ref_id": name,
                "score": float(score),
                "score_direction": "higher_better",
                "score_min": 0.0,
                "score_max": 100.0,
                "dataset": "clive",
                "distortion": None,
                "level": None,
            }
        )
    return make_manifest(rows)
