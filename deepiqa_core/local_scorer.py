"""A scorer in this process from a weights file: the one loader of ``deepiqa score``, the audit
report's quality maps and the Beam workers (the Spark jobs broadcast the weights instead)."""

from __future__ import annotations

from pathlib import Path

from .defaults import packaged_bytes
from .devices import resolve_device
from .errors import UsageError
from .options import ScoringOptions
from .scoring import Scorer
from .weights import WeightsMeta, load_weights, weights_sha256
from .weights.format import read_weights_file


def read_weights(weights: str | Path | bytes) -> bytes:
    """The weights' bytes: a readable file (its size and header checked before it is read whole,
    ``read_weights_file``), the shipped defaults inside a zip or wheel, or bytes as given."""
    if isinstance(weights, bytes):
        return weights
    path = Path(weights)
    if not path.is_file():
        shipped = packaged_bytes(path)  # the default weights inside a --py-files zip
        if shipped is not None:
            return shipped
        raise UsageError(f"--weights {path} is not a file")
    return read_weights_file(path)


def load_scorer(weights: Path, options: ScoringOptions) -> tuple[Scorer, WeightsMeta, str]:
    """The scorer, the file's metadata and its SHA-256, from one read of the weights file."""
    return scorer_from_bytes(read_weights(weights), options)


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
