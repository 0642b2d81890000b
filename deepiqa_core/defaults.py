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
