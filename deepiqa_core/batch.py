"""Scoring tables of image references: the worker side of the Spark job, usable without Spark.

``BatchScorer.score_rows`` takes ``ImageRow``s and returns one ``RowResult`` per row, always: a
score, or a null score with an error code and message (the CLI uses it for folders).
``BatchScorer.score_frame`` does the same for a pandas DataFrame (the Spark job). Columns in:

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

import hashlib
import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from .errors import (
    DeepIQAError,
    ImageTooLargeError,
    NonFiniteScoreError,
    SizeMismatchError,
    TooManyPatchesError,
    UnpairedError,
    error_fields,
    reference_error,
)
from .imaging import (
    DEFAULT_MAX_PIXELS,
    Admit,
    DecodeGate,
    decode_image,
    decode_in_order,
    image_size,
)
from .models import PATCH_SIZE
from .patches import grid_for
from .scoring import DEFAULT_PATCH_BUDGET, ReferenceFeatures, Scorer
from .sources import DEFAULT_MAX_BYTES, DEFAULT_READ_TIMEOUT, read_bytes
from .weights import load_weights, weights_sha256

if TYPE_CHECKING:
    import pandas as pd

# (name, Spark SQL type) of what scoring says about a row (RowResult's fields), in order.
RESULT_FIELDS: list[tuple[str, str]] = [
    ("score", "double"),
    ("num_patches", "int"),
    ("in_range", "boolean"),
    ("width", "int"),
    ("height", "int"),
    ("bytes", "bigint"),
    ("error_code", "string"),
    ("error_message", "string"),
]
# Every output column of a scores table, in order; the job builds its schema from this.
OUTPUT_COLUMNS: list[tuple[str, str]] = [
    ("id", "string"),
    ("uri", "string"),
    ("ref_uri", "string"),
    *RESULT_FIELDS[:6],
    ("model", "string"),
    ("model_sha256", "string"),
    *RESULT_FIELDS[6:],
]
PATCH_COLUMNS: list[tuple[str, str]] = [
    ("patch_y", "array<int>"),
    ("patch_x", "array<int>"),
    ("patch_quality", "array<float>"),
    ("patch_weight", "array<float>"),
]


@dataclass(frozen=True)
class BatchConfig:
    """Everything about how rows are scored, except the weights and the device."""

    stride: int = 32
    patch_budget: int = DEFAULT_PATCH_BUDGET
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_patches: int | None = None  # per image; None: only max_pixels limits an image
    max_bytes: int = DEFAULT_MAX_BYTES  # per file or object
    read_timeout: float = DEFAULT_READ_TIMEOUT  # seconds per file or object
    decode_budget_mb: int = 512  # decoded images held ahead of the network, per task
    resize_reference: bool = False
    decode_workers: int | None = None  # None: the CPUs where it runs, at most 8
    with_patches: bool = False
    reference_cache: int = 16


def output_columns(config: BatchConfig) -> list[tuple[str, str]]:
    return OUTPUT_COLUMNS + (PATCH_COLUMNS if config.with_patches else [])


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def row_bytes(uri: Any, data: Any, config: BatchConfig | None = None) -> bytes:
    """A row's image bytes: the bytes it carries, else those at its uri (within the limits)."""
    config = config or BatchConfig()
    if _missing(data):
        return read_bytes(uri, max_bytes=config.max_bytes, timeout=config.read_timeout)
    if len(data) > config.max_bytes:
        raise ImageTooLargeError(f"{len(data)} bytes exceeds the limit of {config.max_bytes}")
    return bytes(data)


@dataclass
class Loaded:
    """A decoded image and the size of the file it came from."""

    pixels: np.ndarray
    file_bytes: int

    @property
    def nbytes(self) -> int:  # what the decoders' memory budget counts
        return self.pixels.nbytes


def load_image(uri: Any, data: Any, config: BatchConfig) -> np.ndarray:
    """Read and decode one image, refusing it from its header when it has too many patches."""
    return _load(uri, data, config).pixels


def _load(uri: Any, data: Any, config: BatchConfig, admit: Admit | None = None) -> Loaded:
    """Fetch, read the header (limits; ``admit`` the decoded size to the decode budget),
    decode."""
    raw = row_bytes(uri, data, config)
    try:
        height, width = image_size(raw)
    except Exception:  # unreadable header: decode_image names the error, nothing decoded
        return Loaded(decode_image(raw, max_pixels=config.max_pixels), len(raw))
    if config.max_patches is not None and min(height, width) >= PATCH_SIZE:
        count = grid_for(height, width, config.stride).count
        if count > config.max_patches:
            raise TooManyPatchesError(
                f"{width}x{height} has {count} patches; the limit is {config.max_patches}"
            )
    if admit is not None and (config.max_pixels is None or height * width <= config.max_pixels):
        admit(height * width * 3)  # the RGB array decode_image returns
    return Loaded(decode_image(raw, max_pixels=config.max_pixels), len(raw))


@dataclass
class ImageRow:
    """One image to score: bytes (``image``) or where to read them (``uri``), FR reference the
    same way, and optionally the grid rows [start, stop) of a tile."""

    id: str | None  # None: a row without one (its result row then has no id either)
    uri: str | None = None
    image: bytes | None = None
    ref_uri: str | None = None
    ref_image: bytes | None = None
    band: tuple[int, int] | None = None


@dataclass
class RowResult:
    """The outcome for one ImageRow: a score, or an error code and message."""

    score: float | None = None
    num_patches: int | None = None
    in_range: bool | None = None  # the score within the model's declared range (None: no range)
    width: int | None = None  # of the decoded image (None when it could not be decoded)
    height: int | None = None
    bytes: int | None = None  # of the file or object
    error_code: str | None = None
    error_message: str | None = None
    patch_y: np.ndarray | None = None
    patch_x: np.ndarray | None = None
    patch_quality: np.ndarray | None = None
    patch_weight: np.ndarray | None = None

    def fail(self, exc: BaseException) -> None:
        self.error_code, self.error_message = error_fields(exc)


class BatchScorer:
    """One model on one device, scoring rows of images (see the module docstring)."""

    def __init__(
        self,
        scorer: Scorer,
        model_name: str,
        model_sha256: str,
        config: BatchConfig,
        score_range: Sequence[float] | None = None,
    ):
        self.scorer = scorer
        self.model_name = model_name
        self.model_sha256 = model_sha256
        self.config = config
        self.score_range = tuple(score_range) if score_range else None
        self._refs: OrderedDict[tuple, ReferenceFeatures | BaseException] = OrderedDict()
        self.decode_peak_bytes = 0  # most decoded bytes held ahead of the network at once

    def score_rows(self, rows: Sequence[ImageRow]) -> list[RowResult]:
        """One result per row, in order; never raises for a bad row.

        Decoded images wait for the network in two places, both bounded by
        ``decode_budget_mb``: the decoders' read-ahead (``decode_in_order``) and the images
        gathered until a forward pass is full (flushed early when they pass the budget).
        """
        results = [RowResult() for _ in rows]
        pending: list[tuple[int, np.ndarray, ReferenceFeatures | None, int]] = []
        budget_used = pending_bytes = 0
        budget = self.config.decode_budget_mb * 2**20
        gate = DecodeGate(budget)
        loads = decode_in_order(
            range(len(rows)),
            lambda i, admit: _load(rows[i].uri, rows[i].image, self.config, admit),
            self.config.decode_workers,
            gate=gate,
        )
        for i, loaded in loads:
            row = rows[i]
            try:
                if isinstance(loaded, BaseException):
                    raise loaded
                image = loaded.pixels
                full_size = (image.shape[0], image.shape[1])
                result = results[i]
                result.height, result.width = full_size
                result.bytes = loaded.file_bytes
                image, offset = self._crop(image, row.band)
                feats = None
                if self.scorer.full_reference:
                    feats = self._reference(row.ref_uri, row.ref_image, full_size, row.band)
            except Exception as exc:
                results[i].fail(exc)
                continue
            pending.append((i, image, feats, offset))
            budget_used += grid_for(image.shape[0], image.shape[1], self.config.stride).count
            pending_bytes += image.nbytes
            if budget_used >= self.config.patch_budget or pending_bytes >= budget:
                self._flush(pending, results)
                pending, budget_used, pending_bytes = [], 0, 0
        self._flush(pending, results)
        self.decode_peak_bytes = max(self.decode_peak_bytes, gate.peak)
        return results

    def score_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``score_rows`` for a DataFrame (columns in the module docstring), one row per row."""
        import pandas as pd

        n = len(frame)

        def column(name: str) -> list:
            return (
                [None if _missing(v) else v for v in frame[name]] if name in frame else [None] * n
            )

        starts, stops = column("tile_row_start"), column("tile_row_stop")
        rows = [
            ImageRow(
                id=None if v is None else str(v),
                uri=uri,
                image=image,
                ref_uri=ref_uri,
                ref_image=ref_image,
                band=None if a is None or b is None else (int(a), int(b)),
            )
            for v, uri, image, ref_uri, ref_image, a, b in zip(
                column("id"),
                column("uri"),
                column("image"),
                column("ref_uri"),
                column("ref_image"),
                starts,
                stops,
                strict=True,
            )
        ]
        results = self.score_rows(rows)
        out = {
            "id": [r.id for r in rows],
            "uri": [r.uri for r in rows],
            "ref_uri": [r.ref_uri if self.scorer.full_reference else None for r in rows],
            "model": [self.model_name] * n,
            "model_sha256": [self.model_sha256] * n,
        }
        for name, _ in RESULT_FIELDS:
            out[name] = [getattr(r, name) for r in results]
        if self.config.with_patches:
            for name, _ in PATCH_COLUMNS:
                out[name] = [getattr(r, name) for r in results]
        return pd.DataFrame(out, columns=[name for name, _ in output_columns(self.config)])

    def _flush(self, pending: list, results: list[RowResult]) -> None:
        if not pending:
            return
        refs = [f for _, _, f, _ in pending] if self.scorer.full_reference else None
        try:
            scores = self.scorer.score(
                [im for _, im, _, _ in pending], refs, return_patches=self.config.with_patches
            )
        except Exception as exc:  # never fail a task: every row still gets its own error
            for i, *_ in pending:
                results[i].fail(exc)
            return
        for (i, _, _, offset), scored in zip(pending, scores, strict=True):
            result = results[i]
            if not math.isfinite(scored.score):
                result.fail(NonFiniteScoreError(f"the network gave {scored.score} (bad weights?)"))
                continue
            result.score, result.num_patches = scored.score, scored.num_patches
            if self.score_range is not None:
                low, high = self.score_range
                result.in_range = bool(low <= scored.score <= high)
            if scored.patches is not None:
                ys, xs = scored.patches.positions()
                result.patch_y = (ys + offset).astype(np.int32)
                result.patch_x = xs.astype(np.int32)
                result.patch_quality = scored.patches.quality
                result.patch_weight = scored.patches.weight

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
        if _missing(data) and (not isinstance(uri, str) or not uri):
            raise UnpairedError("no reference for this image")
        source = uri if _missing(data) else hashlib.sha1(bytes(data)).hexdigest()
        key = (source, size if self.config.resize_reference else None, band)
        if key not in self._refs:
            try:
                image = load_image(uri, data, self.config)
                if image.shape[:2] != size:
                    if not self.config.resize_reference:
                        raise SizeMismatchError(
                            f"distorted {size[1]}x{size[0]} vs reference "
                            f"{image.shape[1]}x{image.shape[0]} ({uri})"
                        )
                    image = resize(image, size)
                self._refs[key] = self.scorer.reference_features(self._crop(image, band)[0])
            except SizeMismatchError as exc:
                self._refs[key] = exc
            except Exception as exc:
                self._refs[key] = reference_error(exc, uri)
            while len(self._refs) > self.config.reference_cache:
                self._refs.popitem(last=False)
        self._refs.move_to_end(key)
        cached = self._refs[key]
        if isinstance(cached, BaseException):
            raise cached
        return cached


def probe_frame(frame: pd.DataFrame, config: BatchConfig) -> pd.DataFrame:
    """``id`` and ``grid_rows`` (null when unreadable) of every row, from image headers only."""
    import pandas as pd

    n = len(frame)
    uris = list(frame["uri"]) if "uri" in frame else [None] * n
    images = list(frame["image"]) if "image" in frame else [None] * n

    def rows(i: int, admit: Admit) -> int:
        height, width = image_size(row_bytes(uris[i], images[i], config))
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
    return np.array(Image.fromarray(image).resize((width, height), Image.Resampling.BICUBIC))


_cache_lock = threading.Lock()
_cache: OrderedDict[tuple, BatchScorer] = OrderedDict()
CACHED_MODELS = 2


def cached_batch_scorer(
    weights_sha: str,
    weights_bytes: Callable[[], bytes],
    device: str,
    config: BatchConfig,
    *,
    precision: str = "fp32",
    on_load: Callable[[Scorer], None] | None = None,
) -> BatchScorer:
    """This process's BatchScorer for these weights, device and config; built on first use.

    Keyed by the weights' hash (computed once on the driver), so a Python worker that runs many
    tasks loads the model once, and ``weights_bytes`` (e.g. a broadcast's value) is only read then.
    ``on_load`` is called with the new scorer after each actual load (the Spark job counts loads
    and the precision each one resolved to with it).
    """
    key = (weights_sha, device, config, precision)
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
                precision=precision,
            )
            _cache[key] = BatchScorer(scorer, meta.variant, weights_sha, config, meta.score_range)
            if on_load is not None:
                on_load(scorer)
            while len(_cache) > CACHED_MODELS:
                _cache.popitem(last=False)
        _cache.move_to_end(key)
        return _cache[key]
