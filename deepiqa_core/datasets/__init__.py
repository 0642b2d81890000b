"""Readers that turn a user's copy of a published IQA dataset into the common manifest table.

``read_dataset("tid2013", "/data/tid2013")`` -> ``pandas.DataFrame`` with ``MANIFEST_COLUMNS``.
Nothing is downloaded: point a reader at the folder as the dataset's authors publish it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from .clive import read_clive
from .csiq import read_csiq
from .kadid import KADID_TYPES, read_kadid10k
from .koniq import read_koniq10k
from .live import read_live
from .manifest import (
    MANIFEST_COLUMNS,
    DatasetError,
    make_manifest,
    read_manifest,
    validate_manifest,
    write_manifest,
)
from .splits import split_by_reference
from .tid2013 import read_tid2013

READERS: dict[str, Callable[[Path], pd.DataFrame]] = {
    "live": read_live,
    "tid2013": read_tid2013,
    "kadid10k": read_kadid10k,
    "csiq": read_csiq,
    "clive": read_clive,
    "koniq10k": read_koniq10k,
}


def read_dataset(name: str, root: str | Path) -> pd.DataFrame:
    if name not in READERS:
        raise DatasetError(f"unknown dataset {name!r}; known: {sorted(READERS)}")
    if not Path(root).is_dir():
        raise DatasetError(f"{name}: {root} is not a folder")
    return READERS[name](Path(root))


__all__ = [
    "KADID_TYPES",
    "MANIFEST_COLUMNS",
    "READERS",
    "DatasetError",
    "make_manifest",
    "read_dataset",
    "read_manifest",
    "split_by_reference",
    "validate_manifest",
    "write_manifest",
]
