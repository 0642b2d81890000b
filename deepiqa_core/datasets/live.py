"""LIVE Image Quality Assessment Database, Release 2 (779 distorted images, 29 references).

Layout: ``refimgs/*.bmp``; ``jp2k/``, ``jpeg/``, ``wn/``, ``gblur/``, ``fastfading/`` each with
``img<N>.bmp`` and ``info.txt`` (lines ``<reference> <image> <parameter>``); ``dmos.mat`` with
``dmos`` and ``orgs`` (982 entries: jp2k img1-227, jpeg 1-233, wn 1-174, gblur 1-174,
fastfading 1-174, in that order; ``orgs == 1`` marks a reference copy, skipped). When only the
realigned file ``dmos_realigned.mat`` (``dmos_new``) is present it is used. DMOS: lower = better.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ._files import file_index, lookup, mat_vector, require
from .manifest import DatasetError, make_manifest

FOLDERS = (("jp2k", 227), ("jpeg", 233), ("wn", 174), ("gblur", 174), ("fastfading", 174))
ENTRIES = sum(n for _, n in FOLDERS)  # 982


def _scores(root: Path) -> tuple:
    if (root / "dmos.mat").exists():
        path, key = root / "dmos.mat", "dmos"
    elif (root / "dmos_realigned.mat").exists():
        path, key = root / "dmos_realigned.mat", "dmos_new"
    else:
        raise DatasetError(f"LIVE score file not found: expected {root / 'dmos.mat'}")
    dmos, orgs = mat_vector(path, key), mat_vector(path, "orgs")
    if len(dmos) != ENTRIES or len(orgs) != ENTRIES:
        raise DatasetError(f"{path}: expected {ENTRIES} entries, found {len(dmos)} / {len(orgs)}")
    return dmos, orgs


def read_live(root: str | Path) -> pd.DataFrame:
    root = Path(root)
    dmos, orgs = _scores(root)
    refs = file_index(require(root / "refimgs", "LIVE reference folder"))
    rows, offset = [], 0
    for folder, count in FOLDERS:
        info = require(root / folder / "info.txt", "LIVE info file")
        images = file_index(root / folder)
        for line_no, line in enumerate(info.read_text().splitlines(), 1):
            parts = line.split()
            if not parts:
                continue
            name = parts[1].lower() if len(parts) >= 2 else ""
            if not (name.startswith("img") and name.endswith(".bmp") and name[3:-4].isdigit()):
                raise DatasetError(
                    f"{info}:{line_no}: expected '<ref> img<N>.bmp <param>', got {line!r}"
                )
            n = int(name[3:-4])
            if not 1 <= n <= count:
                raise DatasetError(f"{info}:{line_no}: {name} is outside img1..img{count}")
            if orgs[offset + n - 1] == 1:
                continue
            ref = lookup(refs, parts[0], root / "refimgs", str(info))
            rows.append(
                {
                    "id": f"{folder}/{name}",
                    "uri": str(lookup(images, name, root / folder, str(info))),
                    "ref_uri": str(ref),
                    "ref_id": ref.stem.lower(),
                    "score": float(dmos[offset + n - 1]),
                    "score_direction": "lower_better",
                    "score_min": 0.0,
                    "score_max": 100.0,
                    "dataset": "live",
                    "distortion": folder,
                    "level": None,
                }
            )
        offset += count
    return make_manifest(rows)
