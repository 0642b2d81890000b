"""Where the shipped default weights and sample images live inside the installed package."""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
SAMPLES = PACKAGE / "samples"
DEFAULT_WEIGHTS_DIR = PACKAGE / "weights" / "default"
DEFAULT_WEIGHTS = {
    "nr": DEFAULT_WEIGHTS_DIR / "wadiqam-nr.safetensors",
    "fr": DEFAULT_WEIGHTS_DIR / "wadiqam-fr.safetensors",
}
