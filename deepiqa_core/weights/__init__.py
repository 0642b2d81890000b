"""Weight files: the project's own safetensors format and importers for published layouts."""

from .format import WeightsMeta, load_weights, read_meta, save_weights, weights_sha256
from .importers import SOURCES, import_weights

__all__ = [
    "SOURCES",
    "WeightsMeta",
    "import_weights",
    "load_weights",
    "read_meta",
    "save_weights",
    "weights_sha256",
]
