"""A scorer in this process from a weights file: the one loader of ``deepiqa score``, the audit
report's quality maps and the Beam workers (the Spark jobs broadcast the weights instead)."""

from __future__ import annotations

from pathlib import Path

from .devices import resolve_device
from .exits import UsageError
from .options import ScoringOptions
from .scoring import Scorer
from .weights import WeightsMeta, load_weights, weights_sha256


def load_scorer(weights: Path, options: ScoringOptions) -> tuple[Scorer, WeightsMeta, str]:
    """The scorer, the file's metadata and its SHA-256, from one read of the weights file."""
    if not weights.is_file():
        raise UsageError(f"--weights {weights} is not a file")
    return scorer_from_bytes(weights.read_bytes(), options)


def scorer_from_bytes(data: bytes, options: ScoringOptions) -> tuple[Scorer, WeightsMeta, str]:
    """``load_scorer`` for weights already read (the Beam workers read theirs from a URI)."""
    model, meta = load_weights(data)
    device = resolve_device(options.device)
    scorer = Scorer(
        model,
        device=device,
        stride=options.batch.stride,
        patch_budget=options.batch.patch_budget,
        precision=options.precision,
    )
    return scorer, meta, weights_sha256(data)
