"""deepiqa_core: the DeepIQA networks (DIQaM / WaDIQaM, FR and NR), patching, pooling, weights.

Importable and useful without Spark::

    from deepiqa_core import Scorer, decode_image, load_weights

    model, meta = load_weights("model.safetensors")
    scorer = Scorer(model)                       # cuda:0 when present, else CPU
    image = decode_image(open("photo.jpg", "rb").read())
    print(scorer.score_one(image).score, meta.score_direction)
"""

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
