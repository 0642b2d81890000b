"""Where the shipped default weights and sample images live inside the installed package."""

from __future__ import annotations

from pathlib import Path

WEIGHTS_HELP = (
    "a deepiqa .safetensors file (default: the shipped WaDIQaM-NR, or WaDIQaM-FR with --ref)"
)

PACKAGE = Path(__file__).resolve().parent
SAMPLES = PACKAGE / "samples"
DEFAULT_WEIGHTS_DIR = PACKAGE / "weights" / "default"
DEFAULT_WEIGHTS = {
    "nr": DEFAULT_WEIGHTS_DIR / "wadiqam-nr.safetensors",
    "fr": DEFAULT_WEIGHTS_DIR / "wadiqam-fr.safetensors",
}


def default_weights(with_ref: bool) -> Path:
    """The one default-weights rule of every scoring entry point: FR when --ref is given."""
    return DEFAULT_WEIGHTS["fr" if with_ref else "nr"]


def packaged_bytes(path: Path) -> bytes | None:
    """The bytes of a file shipped inside this package, also when the package is imported from
    a zip (``spark-submit --py-files deepiqa.zip``), where it is no file; None for other paths."""
    from importlib.resources import files

    try:
        relative = Path(path).relative_to(PACKAGE)
    except ValueError:
        return None
    resource = files("deepiqa_core").joinpath(*relative.parts)
    return resource.read_bytes() if resource.is_file() else None
