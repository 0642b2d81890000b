"""Quality maps for the audit report: the worst images scored again, here, with patch outputs.

A handful of images on the driver's CPU: cheap next to the run, and it keeps the per-patch
outputs out of the audit's tables.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from ..batch import BatchScorer, ImageRow, load_image
from ..local_scorer import load_scorer
from ..maps import map_png
from ..options import ScoringOptions
from ..patches import grid_for
from ..scoring import PatchMap


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
    config = replace(options.batch, with_patches=True)
    batch = BatchScorer(scorer, meta.variant, sha, config, meta.score_range)
    maps = []
    for row in rows:
        item = ImageRow(id=row["id"], uri=row.get("uri"), image=row["data"])
        result = batch.score_rows([item])[0]
        if result.error_code is not None:
            continue
        image = load_image(item.uri, item.image, config)
        grid = grid_for(image.shape[0], image.shape[1], config.stride)
        png = map_png(
            image,
            PatchMap(grid, result.patch_quality, result.patch_weight),
            score=result.score,
            score_range=score_range,
            label=meta.variant,
            direction=meta.score_direction,
        )
        maps.append({"uri": row.get("uri") or row["id"], "score": result.score, "png": png})
    return maps
