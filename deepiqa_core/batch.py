"""Scoring tables of image references: the worker side of the Spark job, usable without Spark.

``BatchScorer.score_frame`` takes a pandas DataFrame with one row per image to score and returns
one row per input row, always: a score, or a null score with an error code and message. Columns in:

* ``id`` (string), ``uri`` (string) and optionally ``image`` (bytes: used instead of reading uri);
* full reference: ``ref_uri`` and optionally ``ref_image``; a null ``ref_uri`` means unpaired;
* tiles of huge images: ``tile_row_start``/``tile_row_stop`` score only grid rows [start, stop)
  (patch positions stay those of the full image), so one image can be spread over many tasks and
  its patch outputs pooled afterwards (``probe_frame`` gives each image's grid rows).

Images are fetched and decoded by a small thread pool (S3 GETs and Pillow both release the GIL),
patches of many images go through the network together up to the patch budget, and a reference
shared by several rows is fetched, decoded and featurised once per worker (LRU cache).

pandas is imported lazily: it comes with the ``spark`` extra, not with deepiqa_core itself.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from .errors import DeepIQAError, SizeMismatchError, UnpairedError
from .imaging import DEFAULT_MAX_PIXELS, decode_image, decode_in_order, image_size
from .models import PATCH_SIZE
from .patches import grid_for
from .scoring import DEFAULT_PATCH_BUDGET, ReferenceFeatures, Scorer
from .sources import read_bytes
from .weights import load_weights, weights_sha256

if TYPE_CHECKING:
    import pandas as pd

# (name, Spark SQL type) of every output column, in order; the job builds its schema from this.
OUTPUT_COLUMNS: list[tuple[str, str]] = [
    ("id", "string"),
    ("uri", "string"),
    ("ref_uri", "string"),
    ("score", "double"),
    ("num_patches", "int"),
    ("model", "string"),
    ("model_sha256", "string"),
    ("error_code", "string"),
    ("error_message", "string"),
]
PATCH_COLUMNS: list[tuple[str, str]] = [
    ("patch_y", "array<int>"),
    ("patch_x", "array<int>"),
    ("patch_quality", "array<float>"),
    ("patch_weight", "array<float>"),
]
MAX_MESSAGE = 500


@dataclass(frozen=True)
class BatchConfig:
    """Everything about how rows are scored, except the weights and the device."""

    stride: int = 32
    patch_budget: int = DEFAULT_PATCH_BUDGET
    max_pixels: int = DEFAULT_MAX_PIXELS
    resize_reference: bool = False
    decode_workers: int = 4
    with_patches: bool = False
    reference_cache: int = 16


def output_columns(config: BatchConfig) -> list[tuple[str, str]]:
    return OUTPUT_COLUMNS + (PATCH_COLUMNS if config.with_patches else [])


def _error(exc: BaseException) -> tuple[str, str]:
    code = exc.code if isinstance(exc, DeepIQAError) else "internal"
    message = str(exc) if isinstance(exc, DeepIQAError) else f"{type(exc).__name__}: {exc}"
    return code, message[:MAX_MESSAGE]


def _load(uri: Any, data: Any, max_pixels: int) -> np.ndarray:
    if data is None or (isinstance(data, float) and np.isnan(data)):
        if not isinstance(uri, str) or not uri:
            raise ValueError("row has neither image bytes nor a uri")
        data = read_bytes(uri)
    return decode_image(bytes(data), max_pixels=max_pixels)


class BatchScorer:
    """One model on one device, scoring DataFrames of image rows (see the module docstring)."""

    def __init__(self, scorer: Scorer, model_name: str, model_sha256: str, config: BatchConfig):
        self.scorer = scorer
        self.model_name = model_name
        self.model_sha256 = model_sha256
        self.config = config
        self._refs: OrderedDict[tuple, ReferenceFeatures | BaseException] = OrderedDict()

    def score_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        import pandas as pd

        n = len(frame)
        out: dict[str, list] = {name: [None] * n for name, _ in output_columns(self.config)}
        out["id"] = [None if v is None else str(v) for v in frame["id"]]
        out["uri"] = list(frame["uri"]) if "uri" in frame else [None] * n
        refs = list(frame["ref_uri"]) if "ref_uri" in frame else [None] * n
        out["ref_uri"] = refs if self.scorer.full_reference else [None] * n
        out["model"] = [self.model_name] * n
        out["model_sha256"] = [self.model_sha256] * n
        images = list(frame["image"]) if "image" in frame else [None] * n
        ref_images = list(frame["ref_image"]) if "ref_image" in frame else [None] * n
        bands = (
            [
                _band(a, b)
                for a, b in zip(frame["tile_row_start"], frame["tile_row_stop"], strict=True)
            ]
            if "tile_row_start" in frame
            else [None] * n
        )

        pending: list[tuple[int, np.ndarray, ReferenceFeatures | None, int]] = []
        budget_used = 0
        loads = decode_in_order(
            range(n),
            lambda i: _load(out["uri"][i], images[i], self.config.max_pixels),
            self.config.decode_workers,
        )
        for i, image in loads:
            try:
                if isinstance(image, BaseException):
                    raise image
                full_size = image.shape[:2]
                image, offset = self._crop(image, bands[i])
                feats = None
                if self.scorer.full_reference:
                    feats = self._reference(refs[i], ref_images[i], full_size, bands[i])
            except Exception as exc:
                out["error_code"][i], out["error_message"][i] = _error(exc)
                continue
            pending.append((i, image, feats, offset))
            budget_used += grid_for(image.shape[0], image.shape[1], self.config.stride).count
            if budget_used >= self.config.patch_budget:
                self._flush(pending, out)
                pending, budget_used = [], 0
        self._flush(pending, out)
        return pd.DataFrame(out, columns=[name for name, _ in output_columns(self.config)])

    def _flush(self, pending: list, out: dict[str, list]) -> None:
        if not pending:
            return
        refs = [f for _, _, f, _ in pending] if self.scorer.full_reference else None
        try:
            results = self.scorer.score(
                [im for _, im, _, _ in pending], refs, return_patches=self.config.with_patches
            )
        except Exception as exc:  # never fail a task: every row still gets its own error
            for i, *_ in pending:
                out["error_code"][i], out["error_message"][i] = _error(exc)
            return
        for (i, _, _, offset), result in zip(pending, results, strict=True):
            out["score"][i] = result.score
            out["num_patches"][i] = result.num_patches
            if result.patches is not None:
                ys, xs = result.patches.positions()
                out["patch_y"][i] = (ys + offset).astype(np.int32)
                out["patch_x"][i] = xs.astype(np.int32)
                out["patch_quality"][i] = result.patches.quality
                out["patch_weight"][i] = result.patches.weight

    def _crop(self, image: np.ndarray, band: tuple[int, int] | None) -> tuple[np.ndarray, int]:
        """The pixel rows of grid rows [start, stop), and their offset in the full image."""
        if band is None:
            return image, 0
        top = band[0] * self.config.stride
        bottom = (band[1] - 1) * self.config.stride + PATCH_SIZE
        crop = image[top:bottom]
        if crop.shape[0] < PATCH_SIZE:
            raise DeepIQAError(f"tile rows {band} lie outside a {image.shape[0]}-pixel image")
        return np.ascontiguousarray(crop), top

    def _reference(
        self, uri: Any, data: Any, size: tuple[int, int], band: tuple[int, int] | None = None
    ) -> ReferenceFeatures:
        if not isinstance(uri, str) or not uri:
            raise UnpairedError("no reference for this image")
        key = (uri, size if self.config.resize_reference else None, band)
        if key not in self._refs:
            try:
                image = _load(uri, data, self.config.max_pixels)
                if image.shape[:2] != size:
                    if not self.config.resize_reference:
                        raise SizeMismatchError(
                            f"distorted {size[1]}x{size[0]} vs reference "
                            f"{image.shape[1]}x{image.shape[0]} ({uri})"
                        )
                    image = resize(image, size)
                self._refs[key] = self.scorer.reference_features(self._crop(image, band)[0])
            except Exception as exc:
                self._refs[key] = exc
            while len(self._refs) > self.config.reference_cache:
                self._refs.popitem(last=False)
        self._refs.move_to_end(key)
        cached = self._refs[key]
        if isinstance(cached, BaseException):
            raise cached
        return cached


def _band(start: Any, stop: Any) -> tuple[int, int] | None:
    if start is None or stop is None or (isinstance(start, float) and np.isnan(start)):
        return None
    return int(start), int(stop)


def probe_frame(frame: pd.DataFrame, config: BatchConfig) -> pd.DataFrame:
    """``id`` and ``grid_rows`` (null when unreadable) of every row, from image headers only."""
    import pandas as pd

    n = len(frame)
    uris = list(frame["uri"]) if "uri" in frame else [None] * n
    images = list(frame["image"]) if "image" in frame else [None] * n

    def rows(i: int) -> int:
        data = images[i]
        if data is None or (isinstance(data, float) and np.isnan(data)):
            data = read_bytes(uris[i])
        height, width = image_size(bytes(data))
        return grid_for(height, width, config.stride).rows

    grid_rows = [
        None if isinstance(r, BaseException) else int(r)
        for _, r in decode_in_order(range(n), rows, config.decode_workers)
    ]
    return pd.DataFrame(
        {"id": [str(v) for v in frame["id"]], "grid_rows": pd.array(grid_rows, dtype="Int32")}
    )


def resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bicubic resize of an RGB uint8 image to (height, width)."""
    height, width = size
    return np.array(Image.fromarray(image).resize((width, height), Image.BICUBIC))


_cache_lock = threading.Lock()
_cache: OrderedDict[tuple, BatchScorer] = OrderedDict()
CACHED_MODELS = 2


def cached_batch_scorer(
    weights_sha: str,
    weights_bytes: Callable[[], bytes],
    device: str,
    config: BatchConfig,
    *,
    autocast_dtype: Any = None,
    on_load: Callable[[], None] | None = None,
) -> BatchScorer:
    """This process's BatchScorer for these weights, device and config; built on first use.

    Keyed by the weights' hash (computed once on the driver), so a Python worker that runs many
    tasks loads the model once, and ``weights_bytes`` (e.g. a broadcast's value) is only read then.
    ``on_load`` is called after each actual load (the Spark job counts loads with it).
    """
    key = (weights_sha, device, config, str(autocast_dtype))
    with _cache_lock:
        if key not in _cache:
            data = weights_bytes()
            if weights_sha256(data) != weights_sha:
                raise DeepIQAError("weights bytes do not match their hash")
            model, meta = load_weights(data)
            scorer = Scorer(
                model,
                device=device,
                stride=config.stride,
                patch_budget=config.patch_budget,
                autocast_dtype=autocast_dtype,
            )
            _cache[key] = BatchScorer(scorer, meta.variant, weights_sha, config)
            if on_load is not None:
                on_load()
            while len(_cache) > CACHED_MODELS:
                _cache.popitem(last=False)
        _cache.move_to_end(key)
        return _cache[key]
