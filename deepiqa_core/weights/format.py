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
import struct
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch
from safetensors.torch import load as load_tensors_bytes
from safetensors.torch import save_file

from ..calibration import Calibration
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
        if self.calibration is not None:
            try:
                Calibration.from_dict(self.calibration)
            except (KeyError, TypeError, ValueError) as exc:
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


def save_weights(
    model: DeepIQA, path: str | Path, meta: WeightsMeta, *, half: bool = False
) -> None:
    """Write ``model``'s tensors and ``meta``; ``half`` stores fp16 (half the size, ~1e-3 drift)."""
    if meta.variant != model.variant.name or meta.epsilon != model.epsilon:
        raise WeightsError("metadata variant/epsilon do not match the model")
    dtype = torch.float16 if half else torch.float32
    tensors = {k: v.detach().to("cpu", dtype).contiguous() for k, v in model.state_dict().items()}
    save_file(tensors, str(path), metadata={METADATA_KEY: meta.to_json()})


def _header_metadata(data: bytes) -> dict[str, str]:
    if len(data) < 8:
        raise WeightsError("not a safetensors file: too short")
    (size,) = struct.unpack("<Q", data[:8])
    if size > len(data) - 8:
        raise WeightsError("not a safetensors file: header length exceeds file size")
    try:
        header = json.loads(data[8 : 8 + size])
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WeightsError(f"not a safetensors file: {exc}") from exc
    return header.get("__metadata__") or {}


def read_meta(source: str | Path | bytes) -> WeightsMeta:
    """The metadata alone (reads the whole file; weights files are ~10-25 MB)."""
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    metadata = _header_metadata(data)
    if METADATA_KEY not in metadata:
        raise WeightsError("safetensors file without deepiqa metadata; convert it first")
    return WeightsMeta.from_json(metadata[METADATA_KEY])


def load_weights(source: str | Path | bytes) -> tuple[DeepIQA, WeightsMeta]:
    """Build the network a weights file (path or its bytes, e.g. a Spark broadcast) describes.

    Checked in full before it is used: the metadata, every tensor's name and shape against the
    declared variant, every value finite, and a probe image that must score finite and near
    the declared range (``check_probe``); anything else is a ``WeightsError``.
    """
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
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


PROBE_MARGIN = 10.0  # the probe may land this many range widths outside the declared range


def check_probe(model: DeepIQA, meta: WeightsMeta) -> None:
    """Score a fixed 64x64 probe (against itself for FR): finite, and when the file declares a
    score range, within it widened by ``PROBE_MARGIN`` widths on each side.

    This catches corruption that passes every other check (a flipped exponent bit gave scores of
    ~194,000 on a 0-100 model) without judging a model's quality: a sane model's score for any
    image is nowhere near that far out.
    """
    yy, xx = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    probe = torch.stack([(yy + xx) / 126, (yy % 8) / 7, (xx % 5) / 4]).unfold(1, 32, 32)
    patches = probe.unfold(3, 32, 32).permute(1, 3, 0, 2, 4).reshape(4, 3, 32, 32)
    with torch.inference_mode():
        y, alpha = model(patches, patches if model.full_reference else None)
        score = float((alpha * y).sum() / alpha.sum())
    if model.calibration is not None:
        score = model.calibration(score)
    if not math.isfinite(score):
        raise WeightsError(f"the network gives {score} for a plain test image: corrupt weights")
    if meta.score_range:
        low, high = meta.score_range
        width = max(high - low, 1e-9)
        if not low - PROBE_MARGIN * width <= score <= high + PROBE_MARGIN * width:
            raise WeightsError(
                f"the network gives {score:.4g} for a plain test image, far outside its declared "
                f"range {low:g}..{high:g}: corrupt weights"
            )


def weights_sha256(source: str | Path | bytes) -> str:
    """Content hash that names a model in outputs (same bytes, same scores)."""
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    return hashlib.sha256(data).hexdigest()
