"""File lookups shared by the dataset readers (released archives differ in letter case)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .manifest import DatasetError


def require(path: Path, what: str) -> Path:
    if not path.exists():
        raise DatasetError(f"{what} not found: expected {path}")
    return path


def file_index(folder: Path) -> dict[str, Path]:
    """Lower-cased file name -> path for the files directly in ``folder``."""
    require(folder, "folder")
    return {p.name.lower(): p for p in folder.iterdir() if p.is_file()}


def lookup(index: dict[str, Path], name: str, folder: Path, listed_in: str) -> Path:
    try:
        return index[name.lower()]
    except KeyError:
        raise DatasetError(f"{listed_in} lists {name}, but {folder} has no such file") from None


def mat_vector(path: Path, key: str) -> np.ndarray:
    """A MATLAB (v5) variable, flattened: numbers stay numbers, cells of strings become str."""
    from scipy.io import loadmat

    try:
        data = loadmat(str(path))
    except Exception as exc:
        raise DatasetError(f"{path} is not a readable MATLAB file: {exc}") from exc
    if key not in data:
        found = sorted(k for k in data if not k.startswith("__"))
        raise DatasetError(f"{path} has no variable {key!r} (found {found})")
    values = np.ravel(data[key])
    if values.dtype == object:
        return np.array([str(np.ravel(v)[0]) if np.size(v) else "" for v in values], dtype=object)
    return values
