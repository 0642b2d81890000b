"""The project's weights format: safetensors tensors + metadata that says what the file is.

A weights file carries one metadata entry, ``deepiqa``, a JSON object (``WeightsMeta``): variant,
input range, FR fusion order, epsilon, what the score means (name, direction, range, and the
calibration that maps raw outputs onto a readable 0-100 scale, if any), training data, metrics,
provenance and version. Loading never unpickles anything; tensors may be stored in fp16
and are loaded as fp32.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import struct
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import BinaryIO

import torch
from safetensors.torch import load as load_tensors_bytes
from safetensors.torch import save_file

from ..calibration import SCALE, Calibration
from ..errors import WeightsError
from ..models import DEFAULT_EPSILON, FUSION_ORDER, INPUT_RANGE, DeepIQA, get_variant

FORMAT = "deepiqa-weights/1"
METADATA_KEY = "deepiqa"
SCORE_DIRECTIONS = ("higher_better", "lower_better", "unknown")


@dataclass
class WeightsMeta:
    """What a weights file is. ``input_range`` and ``fusion_order`` must match this library."""

    variant: str
    score_direction: str = "unknown"
    score_name: str = "quality"
    score_range: list[float] | None = None
    calibration: dict | None = None  # deepiqa_core.calibration.Calibration.to_dict()
    training_data: str = "unknown"
    metrics: dict[str, float] = field(default_factory=dict)
    source: str = "unknown"
    version: str = "0"
    description: str = ""
    epsilon: float = DEFAULT_EPSILON
    input_range: str = INPUT_RANGE
    fusion_order: str = FUSION_ORDER
    format: str = FORMAT

    def __post_init__(self) -> None:
        get_variant(self.variant)
        if self.score_direction not in SCORE_DIRECTIONS:
            raise WeightsError(f"score_direction must be one of {SCORE_DIRECTIONS}")
        if not (isinstance(self.epsilon, int | float) and 0 < self.epsilon < 1):
            raise WeightsError(f"epsilon must be a number in (0, 1), not {self.epsilon!r}")
        if self.score_range is not None:
            self.score_range = _score_range(self.score_range)
        if self.calibration is not None:
            try:
                Calibration.from_dict(self.calibration)
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise WeightsError(f"unreadable calibration: {exc}") from exc

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> WeightsMeta:
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise WeightsError(f"unreadable deepiqa metadata: {exc}") from exc
        if not isinstance(raw, dict):
            raise WeightsError("unreadable deepiqa metadata: not a JSON object")
        known = {f.name for f in fields(cls)}
        try:
            meta = cls(**{k: v for k, v in raw.items() if k in known})
        except (TypeError, ValueError) as exc:  # e.g. an unknown variant
            raise WeightsError(f"unreadable deepiqa metadata: {exc}") from exc
        if meta.format != FORMAT:
            raise WeightsError(f"unsupported weights format {meta.format!r} (expected {FORMAT})")
        if meta.input_range != INPUT_RANGE or meta.fusion_order != FUSION_ORDER:
            raise WeightsError(
                f"file expects input {meta.input_range} / fusion {meta.fusion_order}; this library "
                f"uses {INPUT_RANGE} / {FUSION_ORDER}; convert it with `deepiqa convert`"
            )
        return meta


def _score_range(value: object) -> list[float]:
    """``[low, high]``, two finite numbers with low < high, or a ``WeightsError``."""
    if (
        isinstance(value, list | tuple)
        and len(value) == 2
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
        and all(math.isfinite(v) for v in value)
        and value[0] < value[1]
    ):
        return [float(value[0]), float(value[1])]
    raise WeightsError(f"score_range must be [low, high] with low < high, not {value!r}")


def save_weights(
    model: DeepIQA, path: str | Path, meta: WeightsMeta, *, half: bool = False
) -> None:
    """Write ``model``'s tensors and ``meta``; ``half`` stores fp16 (half the size, ~1e-3 drift)."""
    if meta.variant != model.variant.name or meta.epsilon != model.epsilon:
        raise WeightsError("metadata variant/epsilon do not match the model")
    dtype = torch.float16 if half else torch.float32
    tensors = {k: v.detach().to("cpu", dtype).contiguous() for k, v in model.state_dict().items()}
    save_file(tensors, str(path), metadata={METADATA_KEY: meta.to_json()})


MAX_WEIGHTS_BYTES = 256 * 2**20  # WaDIQaM-FR in fp32 is 25 MB; no DeepIQA file comes near
MAX_HEADER_BYTES = 2**20  # ~30 tensors' offsets and the metadata take a few KB


def _header_size(first8: bytes, total: int) -> int:
    if len(first8) < 8:
        raise WeightsError("not a safetensors file: too short")
    (size,) = struct.unpack("<Q", first8)
    if size > total - 8 or size > MAX_HEADER_BYTES:
        raise WeightsError(
            f"not a safetensors file: its first 8 bytes declare a {size}-byte header "
            f"(the file has {total} bytes)"
        )
    return size


def _header_metadata(data: bytes) -> dict[str, str]:
    size = _header_size(data[:8], len(data))
    try:
        header = json.loads(data[8 : 8 + size])
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WeightsError(f"not a safetensors file: {exc}") from exc
    if not isinstance(header, dict):
        raise WeightsError("not a safetensors file: its header is not a JSON object")
    metadata = header.get("__metadata__") or {}
    if not isinstance(metadata, dict):
        raise WeightsError("not a safetensors file: __metadata__ is not an object")
    return metadata


def _read_header(f: BinaryIO) -> bytes:
    """An open weights file's first 8 bytes and the header they declare (checked first)."""
    first8 = f.read(8)
    return first8 + f.read(_header_size(first8, os.fstat(f.fileno()).st_size))


def read_weights_file(path: str | Path) -> bytes:
    """A weights file's bytes, its size and header checked before it is read whole: a file that
    cannot be DeepIQA weights (a video named ``.safetensors``, garbage) is refused after reading
    its first 8 bytes, not after reading gigabytes."""
    with open(path, "rb") as f:
        total = os.fstat(f.fileno()).st_size
        if total > MAX_WEIGHTS_BYTES:
            raise WeightsError(
                f"{path} has {total} bytes, more than any DeepIQA weights file "
                f"({MAX_WEIGHTS_BYTES // 2**20} MiB at most)"
            )
        return _read_header(f) + f.read()


def read_meta(source: str | Path | bytes) -> WeightsMeta:
    """The metadata alone (a path: only its header is read)."""
    if isinstance(source, bytes):
        metadata = _header_metadata(source)
    else:
        with open(source, "rb") as f:
            metadata = _header_metadata(_read_header(f))
    if METADATA_KEY not in metadata:
        raise WeightsError("safetensors file without deepiqa metadata; convert it first")
    return WeightsMeta.from_json(metadata[METADATA_KEY])


def load_weights(source: str | Path | bytes) -> tuple[DeepIQA, WeightsMeta]:
    """Build the network a weights file (path or its bytes, e.g. a Spark broadcast) describes.

    Checked in full before it is used: the metadata, every tensor's name and shape against the
    declared variant, every value finite, and a probe image that must score finite and near
    the declared range (``check_probe``); anything else is a ``WeightsError``.
    """
    data = source if isinstance(source, bytes) else read_weights_file(source)
    meta = read_meta(data)
    model = DeepIQA(meta.variant, epsilon=meta.epsilon)
    try:
        tensors = load_tensors_bytes(data)
    except Exception as exc:  # safetensors' own error type: truncated or corrupt tensor data
        raise WeightsError(f"unreadable tensor data: {exc}") from exc
    bad = [name for name, t in tensors.items() if not bool(torch.isfinite(t).all())]
    if bad:
        raise WeightsError(f"tensors with NaN or infinite values: {', '.join(sorted(bad)[:5])}")
    try:
        model.load_state_dict({k: v.float() for k, v in tensors.items()}, strict=True)
    except (RuntimeError, ValueError) as exc:
        raise WeightsError(f"weights do not fit {meta.variant}: {exc}") from exc
    model.eval()
    if meta.calibration is not None:
        model.calibration = Calibration.from_dict(meta.calibration)
    check_probe(model, meta)
    return model, meta


PROBE_MARGIN = 10.0  # the probe may land this many range widths outside the expected range


def probe_patches() -> torch.Tensor:
    """Three 64x64 probes as (3 images x 4 patches, 3, 32, 32): a smooth ramp with stripes,
    flat grey, and seeded noise; any working network scores them differently."""
    yy, xx = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    ramp = torch.stack([(yy + xx) / 126, (yy % 8) / 7, (xx % 5) / 4])
    flat = torch.full((3, 64, 64), 0.5)
    noise = torch.rand((3, 64, 64), generator=torch.Generator().manual_seed(0))
    images = torch.stack([ramp, flat, noise])  # (3, 3, 64, 64)
    tiles = images.unfold(2, 32, 32).unfold(3, 32, 32)  # (3, 3, 2, 2, 32, 32)
    return tiles.permute(0, 2, 3, 1, 4, 5).reshape(12, 3, 32, 32)


def check_probe(model: DeepIQA, meta: WeightsMeta) -> None:
    """Score three fixed probes (each against itself for FR) and refuse corrupt weights.

    On the raw outputs (before any calibration, which squashes everything into 0-100 and so
    would hide a wild value): each finite; within the expected raw range widened by
    ``PROBE_MARGIN`` widths on each side (with a calibration: its knots, widened to at least
    the 0-100 scale's width, since raw outputs are on the training label's scale; else the
    declared ``score_range``); and not one value for all three (a network whose output no
    longer depends on its input). A flipped exponent bit once gave ~194,000 on a 0-100 model,
    one in a calibrated file's final bias 14,824 (every image then scored 100). This judges no
    model's quality: a sane model's raw score for any image is nowhere near that far out.
    """
    with torch.inference_mode():
        patches = probe_patches()
        y, alpha = model(patches, patches if model.full_reference else None)
        y, alpha = y.double().view(3, 4), alpha.double().view(3, 4)
        raw = ((alpha * y).sum(1) / alpha.sum(1)).tolist()
    if not all(math.isfinite(v) for v in raw):
        raise WeightsError(f"the network gives {raw} for plain test images: corrupt weights")
    bounds: tuple[float, float, str] | None = None
    if model.calibration is not None:  # its knots, at least as wide as the 0-100 scale
        knots = model.calibration.raw
        pad = max(0.0, (SCALE[1] - SCALE[0]) - (knots[-1] - knots[0])) / 2
        bounds = (knots[0] - pad, knots[-1] + pad, "calibration's raw scale")
    elif meta.score_range:
        bounds = (meta.score_range[0], meta.score_range[1], "declared range")
    if bounds is not None:
        low, high, what = bounds
        width = max(high - low, 1e-9)
        if not all(low - PROBE_MARGIN * width <= v <= high + PROBE_MARGIN * width for v in raw):
            far = max(raw, key=lambda v: abs(v - (low + high) / 2))
            raise WeightsError(
                f"the network gives {far:.4g} for a plain test image, far outside its {what} "
                f"{low:g}..{high:g}: corrupt weights"
            )
    if max(raw) == min(raw):  # exactly: an untrained network's outputs differ by ~1e-6
        raise WeightsError(
            f"the network gives {raw[0]:.6g} for three very different test images: its output "
            "no longer depends on the image (corrupt weights)"
        )


def weights_sha256(source: str | Path | bytes) -> str:
    """Content hash that names a model in outputs (same bytes, same scores)."""
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    return hashlib.sha256(data).hexdigest()
