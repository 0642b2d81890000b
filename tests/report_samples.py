"""A realistic audit summary + extras for the report tests and the screenshot demo.

Pictures are made here (numpy + Pillow): thumbnails through ``report.thumbnail`` and quality
maps through ``maps.map_png`` on a synthetic patch map, so no model or network is needed. URIs
include the characters that must be escaped (``<script>``, ``&``, quotes).
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageFilter

from deepiqa_core.audit.report import thumbnail
from deepiqa_core.maps import map_png
from deepiqa_core.patches import grid_for
from deepiqa_core.scoring import PatchMap

EDGES = [float(v) for v in range(0, 101, 5)]
NASTY_URI = 's3://media/lib/<script>alert("x")</script>/it\'s & more.jpg'


def picture(seed: int, height: int = 120, width: int = 180) -> np.ndarray:
    """A colourful smooth scene with some texture, different for each seed."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    phase = rng.uniform(0, 6, 3)
    base = np.stack(
        [120 + 90 * np.sin(xx / (13 + 5 * c) + yy / (17 + 3 * c) + phase[c]) for c in range(3)],
        axis=-1,
    )
    return np.clip(base + rng.normal(0, 8, base.shape), 0, 255).astype(np.uint8)


def encoded(array: np.ndarray, fmt: str = "PNG", blur: float = 0.0) -> bytes:
    image = Image.fromarray(array)
    if blur:
        image = image.filter(ImageFilter.GaussianBlur(blur))
    buf = io.BytesIO()
    image.save(buf, format=fmt)
    return buf.getvalue()


def gallery(n: int, worst: bool) -> list[dict]:
    """``n`` gallery entries with real thumbnails; the worst list has one without a picture."""
    items = []
    for i in range(n):
        score = 8.0 + 3.1 * i if worst else 93.0 - 2.7 * i
        data = encoded(picture(i + (0 if worst else 100)), blur=4.0 if worst else 0.0)
        uri = f"s3://media/lib/2026/{11 - i % 3:02d}/img_{i:04d}.jpg"
        if worst and i == 1:
            uri = NASTY_URI
        items.append({"uri": uri, "score": score, "thumbnail": thumbnail(data), "note": None})
    if worst and n >= 3:
        items[2]["thumbnail"] = None
        items[2]["note"] = "could not be read or decoded now"
    return items


def quality_map(seed: int, score: float) -> dict:
    image = picture(seed, 96, 128)
    grid = grid_for(96, 128, 32)
    count = len(grid.positions()[0])
    rng = np.random.default_rng(seed)
    pm = PatchMap(grid, rng.uniform(5, 60, count), rng.uniform(0.2, 2.0, count))
    png = map_png(image, pm, score=score, score_range=(0, 100), label="wadiqam-nr")
    return {"uri": f"s3://media/lib/2026/11/img_{seed:04d}.jpg", "score": score, "png": png}


def histogram(scores: np.ndarray) -> list[int]:
    return [int(c) for c in np.histogram(np.clip(scores, 0, 100), bins=EDGES)[0]]


def summary(run_scored: int = 12, runs: int = 1) -> dict:
    """A summary like the audit job writes; ``run_scored=0`` is an incremental no-op run."""
    rng = np.random.default_rng(7)
    library = rng.normal(61, 14, 1990)
    run = rng.normal(55, 16, run_scored)
    empty = {"scored": 0, "failed": 0, "median": None, "p10": None, "p90": None, "mean": None}
    run_stats = (
        {
            "scored": run_scored,
            "failed": 1,
            "median": float(np.median(run)),
            "p10": float(np.percentile(run, 10)),
            "p90": float(np.percentile(run, 90)),
            "mean": float(run.mean()),
            "share_below": float((run < 35).mean()),
            "error_rate": 1 / (run_scored + 1),
        }
        if run_scored
        else {**empty, "share_below": None, "error_rate": None}
    )
    folders = [
        {"folder": "2026/11", "count": 1200, "median": 60.2, "p10": 41.0, "share_below": 0.05,
         "failed": 4},
        {"folder": "2025/01", "count": 20, "median": 44.9, "p10": 30.5, "share_below": 0.2,
         "failed": 0},
        {"folder": "<b>odd & \"name\"</b>", "count": 300, "median": 70.5, "p10": 52.0,
         "share_below": 0.01, "failed": 1},
        {"folder": "archive", "count": 480, "median": None, "p10": None, "share_below": None,
         "failed": 5},
    ]  # fmt: skip
    return {
        "run_id": "20261129T010203-ab12cd34",
        "library": "s3://media/lib/",
        "state": "/data/audit",
        "started_at": "2026-11-29T01:02:03Z",
        "finished_at": "2026-11-29T01:05:00Z",
        "seconds": 177.0,
        "model": "wadiqam-nr",
        "model_sha256": "0123456789abcdef" * 4,
        "score_name": "quality (higher is better)",
        "score_direction": "higher_better",
        "score_range": [0.0, 100.0],
        "threshold": 35.0,
        "counts": {
            "library": 2000,
            "new": 10,
            "changed": 2,
            "unchanged": 1988,
            "removed": 3,
            "scored": run_scored,
            "failed": 1 if run_scored else 0,
            "retried": 0,
        },  # fmt: skip
        "errors": {"decode_error": 1} if run_scored else {},
        "library_stats": {
            "scored": 1990,
            "failed": 10,
            "median": float(np.median(library)),
            "p10": float(np.percentile(library, 10)),
            "p90": float(np.percentile(library, 90)),
            "mean": float(library.mean()),
            "share_below": float((library < 35).mean()),
            "error_rate": 0.005,
        },
        "run_stats": run_stats,
        "alerts": [
            {"rule": "p10<40", "metric": "p10", "value": 42.8, "fired": False},
            {"rule": "error_rate>0.01", "metric": "error_rate", "value": 0.005, "fired": False},
        ],
        "alerted": False,
        "histogram": {"edges": EDGES, "library": histogram(library), "run": histogram(run)},
        "folders": folders,
        "folders_truncated": False,
        "arguments": {
            "library": "s3://media/lib/",
            "threshold": 35.0,
            "gallery": 12,
            "alert": ["p10<40", "error_rate>0.01"],
        },  # fmt: skip
        "versions": {"deepiqa": "0.1.0", "spark": "4.0.1", "python": "3.11.7"},
    }


def extras(runs: int = 1, n_gallery: int = 6, n_maps: int = 2) -> dict:
    """Galleries, maps, error rows and a trend of ``runs`` runs (oldest first)."""
    trend = [
        {
            "run_id": f"2026110{d}T010203-x",
            "finished_at": f"2026-11-{d + 1:02d}T01:05:00Z",
            "median": 61.0 - 0.4 * d,
            "p10": 43.0 - 0.6 * d,
            "share_below": 0.03 + 0.004 * d,
            "failed": d % 3,
            "library": 1900 + 10 * d,
        }
        for d in range(runs)
    ]
    return {
        "worst": gallery(n_gallery, worst=True),
        "best": gallery(n_gallery, worst=False),
        "maps": [quality_map(i, 8.0 + 3.1 * i) for i in range(n_maps)],
        "error_rows": [
            {
                "uri": "s3://media/lib/2026/11/broken.jpg",
                "error_code": "decode_error",
                "error_message": "cannot identify image file <_io.BytesIO object>",
            },
        ],  # fmt: skip
        "trend": trend,
    }
