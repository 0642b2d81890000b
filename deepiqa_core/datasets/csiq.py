"""CSIQ (866 distorted images: 30 references x 6 types x 4-5 levels).

Layout: ``src_imgs/<image>.png``, ``dst_imgs/<folder>/<image>.<TAG>.<level>.png`` and the score
sheet ``csiq.DMOS.xlsx`` (sheet ``all_by_image``; a CSV export ``csiq.DMOS.csv`` of it also
works) with columns ``image, dst_idx, dst_type, dst_lev, dmos_std, dmos``. DMOS 0-1, lower =
better. The header row is found by its column names, wherever it sits in the sheet.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ._files import file_index, lookup, require
from .manifest import DatasetError, make_manifest

# dst_type in the sheet -> (folder under dst_imgs, file name tag, our type name)
TYPES = {
    "noise": ("awgn", "AWGN", "white_noise"),
    "jpeg": ("jpeg", "JPEG", "jpeg"),
    "jpeg 2000": ("jpeg2000", "jpeg2000", "jpeg2000"),
    "1/f noise": ("fnoise", "fnoise", "pink_noise"),
    "blur": ("blur", "BLUR", "gaussian_blur"),
    "contrast": ("contrast", "contrast", "contrast_change"),
}
HEADER = ("image", "dst_type", "dst_lev", "dmos")


def _sheet(root: Path) -> tuple[Path, list[list]]:
    xlsx, csv = root / "csiq.DMOS.xlsx", root / "csiq.DMOS.csv"
    if xlsx.exists():
        from openpyxl import load_workbook

        book = load_workbook(xlsx, read_only=True, data_only=True)
        sheet = book["all_by_image"] if "all_by_image" in book.sheetnames else book.worksheets[0]
        return xlsx, [list(r) for r in sheet.iter_rows(values_only=True)]
    if csv.exists():
        return csv, pd.read_csv(csv, header=None, dtype=str).values.tolist()
    raise DatasetError(f"CSIQ score sheet not found: expected {xlsx} (or {csv.name})")


def _table(root: Path) -> tuple[Path, pd.DataFrame]:
    path, cells = _sheet(root)
    for i, row in enumerate(cells):
        names = [str(c).strip().lower() if c is not None else "" for c in row]
        if all(h in names for h in HEADER):
            table = pd.DataFrame(cells[i + 1 :], columns=names)
            return path, table.dropna(subset=["image", "dst_type"])
    raise DatasetError(f"{path}: no header row with columns {HEADER}")


def read_csiq(root: str | Path) -> pd.DataFrame:
    root = Path(root)
    sheet, table = _table(root)
    sources = file_index(require(root / "src_imgs", "CSIQ reference folder"))
    folders: dict[str, dict[str, Path]] = {}
    rows = []
    for rec in table.itertuples(index=False):
        image, kind = str(rec.image).strip(), str(rec.dst_type).strip().lower()
        if image.endswith(".0"):  # numeric names (1600) read back from Excel as floats
            image = image[:-2]
        if kind not in TYPES:
            raise DatasetError(
                f"{sheet}: unknown dst_type {rec.dst_type!r} (known: {sorted(TYPES)})"
            )
        folder, tag, name = TYPES[kind]
        level = int(float(rec.dst_lev))
        if folder not in folders:
            folders[folder] = file_index(root / "dst_imgs" / folder)
        file_name = f"{image}.{tag}.{level}.png"
        ref = lookup(sources, f"{image}.png", root / "src_imgs", str(sheet))
        rows.append(
            {
                "id": f"{folder}/{file_name}",
                "uri": str(
                    lookup(folders[folder], file_name, root / "dst_imgs" / folder, str(sheet))
                ),
                "ref_uri": str(ref),
                "ref_id": image,
                "score": float(rec.dmos),
                "score_direction": "lower_better",
                "score_min": 0.0,
                "score_max": 1.0,
                "dataset": "csiq",
                "distortion": name,
                "level": level,
            }
        )
    return make_manifest(rows)
