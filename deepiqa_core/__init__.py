"""deepiqa_core: the DeepIQA networks (DIQaM / WaDIQaM, FR and NR), patching, pooling, weights.

Importable and useful without Spark::

    from deepiqa_core import Scorer, decode_image, load_weights

    model, meta = load_weights("model.safetensors")
    scorer = Scorer(model)                       # cuda:0 when present, else CPU
    image = decode_image(open("photo.jpg", "rb").read())
    print(scorer.score_one(image).score, meta.score_direction)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .devices import resolve_device
    from .errors import (
        DeepIQAError,
        ImageDecodeError,
        ImageTooLargeError,
        ImageTooSmallError,
        SizeMismatchError,
        UnpairedError,
        UnsupportedImageError,
        WeightsError,
    )
    from .imaging import decode_image, read_image
    from .models import PATCH_SIZE, VARIANTS, DeepIQA, count_parameters, get_variant
    from .patches import Grid, grid_for
    from .pooling import pool
    from .scoring import ImageScore, PatchMap, ReferenceFeatures, Scorer
    from .weights import WeightsMeta, import_weights, load_weights, read_meta, save_weights

# Names are imported on first use (PEP 562), so that the torch-free parts (``deepiqa_core.audit
# .outcome``: a scheduler's outcome check, ``errors``, ``exits``) import without torch.
_EXPORTS = {
    "resolve_device": "devices",
    "DeepIQAError": "errors",
    "ImageDecodeError": "errors",
    "ImageTooLargeError": "errors",
    "ImageTooSmallError": "errors",
    "SizeMismatchError": "errors",
    "UnpairedError": "errors",
    "UnsupportedImageError": "errors",
    "WeightsError": "errors",
    "decode_image": "imaging",
    "read_image": "imaging",
    "PATCH_SIZE": "models",
    "VARIANTS": "models",
    "DeepIQA": "models",
    "count_parameters": "models",
    "get_variant": "models",
    "Grid": "patches",
    "grid_for": "patches",
    "pool": "pooling",
    "ImageScore": "scoring",
    "PatchMap": "scoring",
    "ReferenceFeatures": "scoring",
    "Scorer": "scoring",
    "WeightsMeta": "weights",
    "import_weights": "weights",
    "load_weights": "weights",
    "read_meta": "weights",
    "save_weights": "weights",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


__version__ = "0.1.0"

__all__ = [
    "PATCH_SIZE",
    "VARIANTS",
    "DeepIQA",
    "DeepIQAError",
    "Grid",
    "ImageDecodeError",
    "ImageScore",
    "ImageTooLargeError",
    "ImageTooSmallError",
    "PatchMap",
    "ReferenceFeatures",
    "Scorer",
    "SizeMismatchError",
    "UnpairedError",
    "UnsupportedImageError",
    "WeightsError",
    "WeightsMeta",
    "count_parameters",
    "decode_image",
    "get_variant",
    "grid_for",
    "import_weights",
    "load_weights",
    "pool",
    "read_image",
    "read_meta",
    "resolve_device",
    "save_weights",
]
