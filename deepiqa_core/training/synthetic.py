"""Synthetic KADID-style training data: photos x distortion types x levels, weak-labelled.

For each photo (resized to a long side of ``long_side`` px, Lanczos), every requested
distortion type and level is applied (``distortions``) and labelled with the weak label
(``weak_labels``). Files written under the output folder:

  references/<photo>.png                       the resized pristine photo
  images/<photo>__<type>__<level>.png          each distorted version (lossless PNG)
  manifest.parquet                             the common manifest (dataset "synthetic-<label>",
                                               e.g. "synthetic-weak-v1": the label version)

Every (photo, type, level) draws its randomness from a generator seeded by (seed, photo, type,
level) alone, so the Spark job (groups spread over executors) and ``generate_local`` write the
same pixels and labels. The ``<photo>__`` prefix is what ``jobs/score.py`` pairs FR images by.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import UsageError
from ..imaging import decode_image
from ..seeding import rng
from ..sources import read_bytes
from .distortions import DISTORTIONS, LEVELS, distort
from .weak_labels import LABELS, WEAK_LABEL_VERSION, weak_label

DEFAULT_LONG_SIDE = 384


def dataset_name(label: str = WEAK_LABEL_VERSION) -> str:
    """The rows' dataset name: it names the label version, so sets made with different labels
    never mix unnoticed in one evaluation."""
    return f"synthetic-{label}"


@dataclass(frozen=True)
class Group:
    """One unit of work: one photo, one distortion type, several levels."""

    photo: str  # the photo's id (file stem)
    uri: str
    distortion: str
    levels: tuple[int, ...] = LEVELS
    label: str = WEAK_LABEL_VERSION


def plan_groups(
    photos: dict[str, str],
    distortions: Sequence[str] | None = None,
    levels: Sequence[int] = LEVELS,
    label: str = WEAK_LABEL_VERSION,
) -> list[Group]:
    kinds = list(distortions or DISTORTIONS)
    unknown = sorted(set(kinds) - set(DISTORTIONS))
    if unknown:
        raise UsageError(f"unknown distortion types {unknown}; known: {sorted(DISTORTIONS)}")
    if label not in LABELS:
        raise UsageError(f"unknown label version {label!r}; known: {sorted(LABELS)}")
    return [Group(p, photos[p], k, tuple(levels), label) for p in sorted(photos) for k in kinds]


def photo_ids(uris: Sequence[str]) -> dict[str, str]:
    """File stem -> uri; two photos with one stem would collide in the output, so refuse."""
    out: dict[str, str] = {}
    for uri in uris:
        stem = Path(uri.rsplit("/", 1)[-1]).stem
        if stem in out:
            raise UsageError(f"two photos share the name {stem!r}: {out[stem]} and {uri}")
        if "__" in stem:
            raise UsageError(f"photo name {stem!r} contains '__' (reserved for pairing)")
        out[stem] = uri
    return out


def level_rng(seed: int, photo: str, distortion: str, level: int) -> np.random.Generator:
    """This key predates the purpose-named ones (no leading name), so published synthetic sets
    keep their pixels for the same seed."""
    return rng(seed, photo, distortion, level)


def load_photo(uri: str, long_side: int) -> np.ndarray:
    img = Image.fromarray(decode_image(read_bytes(uri)))
    scale = long_side / max(img.size)
    size = (max(32, round(img.width * scale)), max(32, round(img.height * scale)))
    return np.asarray(img.resize(size, Image.Resampling.LANCZOS))


def _write_png(array: np.ndarray, path: Path) -> None:
    """Atomic: a retried or concurrent task never leaves a half-written file behind."""
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(buf.getvalue())
    os.replace(tmp, path)


def render_group(
    group: Group, out_dir: str | Path, seed: int, long_side: int, uri_root: str | None = None
) -> list[dict]:
    """Write a group's reference and distorted images; return their manifest rows.

    ``uri_root``: where the rows say the files are, when they are written to a staging folder
    that is renamed into place afterwards (default: ``out_dir``).
    """
    out = Path(out_dir)
    root = Path(uri_root) if uri_root is not None else out
    (out / "references").mkdir(parents=True, exist_ok=True)
    (out / "images").mkdir(parents=True, exist_ok=True)
    ref = load_photo(group.uri, long_side)
    ref_path = out / "references" / f"{group.photo}.png"
    _write_png(ref, ref_path)
    rows = []
    for level in group.levels:
        img = distort(
            ref, group.distortion, level, level_rng(seed, group.photo, group.distortion, level)
        )
        name = f"{group.photo}__{group.distortion}__{level}.png"
        _write_png(img, out / "images" / name)
        rows.append(
            {
                "id": name,
                "uri": str(root / "images" / name),
                "ref_uri": str(root / "references" / f"{group.photo}.png"),
                "ref_id": group.photo,
                "score": weak_label(img, ref, group.label),
                "score_direction": "higher_better",
                "score_min": 0.0,
                "score_max": 100.0,
                "dataset": dataset_name(group.label),
                "distortion": group.distortion,
                "level": level,
            }
        )
    return rows


def generate_local(
    photos: Sequence[str],
    out_dir: str | Path,
    seed: int = 0,
    long_side: int = DEFAULT_LONG_SIDE,
    distortions: Sequence[str] | None = None,
    levels: Sequence[int] = LEVELS,
    workers: int = 1,
    label: str = WEAK_LABEL_VERSION,
):
    """The whole set on this machine (``workers`` processes); returns the manifest (also
    written as manifest.parquet)."""
    from ..datasets import make_manifest, write_manifest

    groups = plan_groups(photo_ids(photos), distortions, levels, label)
    n = len(groups)
    if workers > 1:
        # spawn, not fork: a forked child of a process that already ran torch can deadlock
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            parts = list(pool.map(render_group, groups, [out_dir] * n, [seed] * n, [long_side] * n))
    else:
        parts = [render_group(g, out_dir, seed, long_side) for g in groups]
    rows = [row for part in parts for row in part]
    manifest = make_manifest(sorted(rows, key=lambda r: r["id"]))
    write_manifest(manifest, Path(out_dir) / "manifest.parquet")
    return manifest
