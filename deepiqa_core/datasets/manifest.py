"""The one manifest table every dataset reader, the synthetic generator, training and evaluation
share (a pandas DataFrame; Parquet or CSV on disk).

Columns (``MANIFEST_COLUMNS``):
  id               unique within the manifest (the dataset-relative path of the image)
  uri              local path or s3:// URI of the (distorted) image
  ref_uri          its pristine reference (FR datasets), else null
  ref_id           the reference it was made from; for authentic-distortion sets (CLIVE, KonIQ)
                   the image itself. Splits are drawn over ref_id, so no source image is in two.
  score            the subjective (or weak-label) score, on the dataset's own scale
  score_direction  "higher_better" (MOS) or "lower_better" (DMOS)
  score_min/max    the scale's nominal range
  dataset          e.g. "tid2013", "synthetic"
  distortion       distortion type name where known, else null
  level            distortion level (1 = mildest) where the dataset defines one, else null
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..errors import DeepIQAError

MANIFEST_COLUMNS = (
    "id",
    "uri",
    "ref_uri",
    "ref_id",
    "score",
    "score_direction",
    "score_min",
    "score_max",
    "dataset",
    "distortion",
    "level",
)
SCORE_DIRECTIONS = ("higher_better", "lower_better")


class DatasetError(DeepIQAError, ValueError):
    """A dataset folder or manifest that does not match the layout it claims to be."""

    code = "bad_dataset"


def make_manifest(rows: list[dict]) -> pd.DataFrame:
    """Rows (dicts with the manifest's keys) -> a manifest with fixed column order and dtypes."""
    frame = pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS))
    frame["score"] = frame["score"].astype("float64")
    frame["score_min"] = frame["score_min"].astype("float64")
    frame["score_max"] = frame["score_max"].astype("float64")
    frame["level"] = frame["level"].astype("Int64")
    return validate_manifest(frame)


def validate_manifest(frame: pd.DataFrame) -> pd.DataFrame:
    """Check the columns and values that training and evaluation rely on; returns the frame."""
    missing = [c for c in MANIFEST_COLUMNS if c not in frame.columns]
    if missing:
        raise DatasetError(f"manifest lacks columns {missing}; expected {list(MANIFEST_COLUMNS)}")
    if frame.empty:
        raise DatasetError("manifest has no rows")
    dupes = frame["id"][frame["id"].duplicated()].unique()
    if len(dupes):
        raise DatasetError(f"manifest ids are not unique: {list(dupes[:5])}")
    if frame["uri"].isna().any():
        raise DatasetError(
            "manifest rows without a uri: " + str(list(frame["id"][frame["uri"].isna()][:5]))
        )
    if frame["score"].isna().any():
        raise DatasetError(
            "manifest rows without a score: " + str(list(frame["id"][frame["score"].isna()][:5]))
        )
    bad = set(frame["score_direction"]) - set(SCORE_DIRECTIONS)
    if bad:
        raise DatasetError(f"score_direction must be one of {SCORE_DIRECTIONS}, got {sorted(bad)}")
    return frame


def read_manifest(path: str | Path) -> pd.DataFrame:
    """A manifest from Parquet (file or folder) or CSV."""
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"manifest {path} does not exist")
    if path.suffix.lower() == ".csv":
        text = ("id", "uri", "ref_uri", "ref_id", "dataset", "distortion")
        frame = pd.read_csv(path, dtype={c: str for c in text})
        for column in set(text) & set(frame.columns):  # empty CSV cells: None, as in Parquet
            frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
        if "level" in frame.columns:
            frame["level"] = frame["level"].astype("Int64")
    else:
        frame = pd.read_parquet(path)
    return validate_manifest(frame)


def write_manifest(frame: pd.DataFrame, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
