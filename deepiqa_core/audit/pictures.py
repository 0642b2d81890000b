"""Quality maps for the audit report: the worst images scored again, here, with patch outputs.

A handful of images on the driver's CPU: cheap next to the run, and it keeps the per-patch
outputs out of the audit's tables.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from ..batch import BatchScorer, ImageRow
from ..local_scorer import load_scorer
from ..maps import map_png, score_for_map
from ..options import ScoringOptions


def quality_maps(
    weights: Path,
    rows: Sequence[dict],
    options: ScoringOptions,
    score_range: Sequence[float] | None,
) -> list[dict]:
    """``{"uri", "score", "png"}`` for each row (``id``, ``uri``, ``score``, ``data``: its
    bytes) that scores again without error; rows that do not are left out."""
    if not rows:
        return []
    options = replace(options, device="cpu")
    scorer, meta, sha = load_scorer(Path(weights), options)
    batch = BatchScorer(scorer, meta.variant, sha, options.batch, meta.score_range)
    maps = []
    for row in rows:
        item = ImageRow(id=row["id"], uri=row.get("uri"), image=row["data"])
        result, drawn = score_for_map(batch, item)
        if drawn is None:
            continue
        png = map_png(
            *drawn,
            score=result.score,
            score_range=score_range,
            label=meta.variant,
            direction=meta.score_direction,
        )
        maps.append({"uri": row.get("uri") or row["id"], "score": result.score, "png": png})
    return maps
