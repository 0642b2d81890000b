"""What the default models' scores mean, on held-out photos: the measurements of issue 12.

For each held-out photo (long side 384 px, as the synthetic training data) and each model:

* synthetic set: every KADID-style type x level 1-5, seeded as ``deepiqa synthesize`` seeds it;
  SROCC between the score and the weak label overall and per type, and the mean level
  correlation (Spearman of score vs level within each (photo, type): -1 = always falls);
* JPEG ladder: quality 90, 75, 50, 30, 10; the share of photos whose score falls strictly along
  it (monotone), and the share whose q10 scores below its q90;
* clean above level 1: the share of (photo, type) pairs, types JPEG, Gaussian blur, white noise
  and rescale (a thumbnail scaled back up) at level 1, where the clean photo scores higher;
* noise ladder: white noise levels 1-5; the same share;
* pristine: the photos' own scores (FR: each photo against itself);
* calibration table: the median score per distortion level (over all types) and per JPEG
  quality, i.e. what a user can expect a number to mean.

It prints a JSON report and writes it with ``--json``, with the goals of issue 19 beside the
figures. Held-out photos: the test split (``split_of`` in ``scripts/train_default_weights.py``)
of the ``--photos`` folder that ``scripts/gather_photos.py`` fills, or the ``--test`` ids in it;
without ``--photos``, the bundled samples (which the defaults were trained on: the report then
says ``held_out: false``). SROCC is against the ``--label`` weak label (default: the current
version); the level correlation and the ladders need no label.

    python scripts/gather_photos.py --out build/photos
    python benchmarks/eval_quality.py --photos build/photos/photos \
        --json benchmarks/results/quality-defaults.json
    python benchmarks/eval_quality.py --photos ~/photos --test a b c --weights-nr new-nr.safetensors
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from train_default_weights import find_photos, split_of  # noqa: E402

from deepiqa_core import Scorer  # noqa: E402
from deepiqa_core.defaults import SAMPLES, default_weights  # noqa: E402
from deepiqa_core.evaluation.metrics import mean_level_correlation, srocc  # noqa: E402
from deepiqa_core.training.distortions import (  # noqa: E402
    DISTORTIONS,
    LEVELS,
    distort,
    jpeg_at_quality,
)
from deepiqa_core.training.ladders import KEY_TYPES  # noqa: E402  (issue 19: each >= 0.70)
from deepiqa_core.training.synthetic import DEFAULT_LONG_SIDE, level_rng, load_photo  # noqa: E402
from deepiqa_core.training.weak_labels import LABELS, WEAK_LABEL_VERSION, weak_label  # noqa: E402
from deepiqa_core.weights import load_weights  # noqa: E402

JPEG_LADDER = (90, 75, 50, 30, 10)
NOISE = "white_noise"
GOALS = {  # issue 19, on held-out photos
    "wadiqam-nr": {
        "srocc": 0.80,
        "level_correlation": -0.85,
        "jpeg_monotone": 8 / 9,
        "jpeg_q10_below_q90": 1.0,
        "key_type_srocc": 0.70,
        "clean_above_level1": 0.90,
        "p50": 85,
        "pristine_min": 50,
    },
    "wadiqam-fr": {"srocc": 0.92, "level_correlation": -0.95, "colour_type_srocc": 0.5},
}
LEVEL1_TYPES = ("jpeg", "gaussian_blur", "white_noise")  # + rescale: clean above each


def _strictly_falling(scores: list[float]) -> bool:
    return all(a > b for a, b in zip(scores, scores[1:], strict=False))


def evaluate(scorer: Scorer, photos: dict[str, np.ndarray], seed: int, label: str) -> dict:
    """The report for one model (see the module docstring)."""
    fr = scorer.full_reference

    def score(images: list[np.ndarray], ref: np.ndarray) -> list[float]:
        refs = [ref] * len(images) if fr else None
        return [r.score for r in scorer.score(images, refs)]

    rows = []  # (photo, type, level, score, label)
    jpeg_monotone, noise_monotone, pristine = [], [], []
    q10_below_q90, clean_above = [], []  # issue 19's measures
    by_quality: dict[int, list[float]] = defaultdict(list)
    for name, photo in photos.items():
        pristine.append(score([photo], photo)[0])
        for kind in DISTORTIONS:
            images = [distort(photo, kind, lv, level_rng(seed, name, kind, lv)) for lv in LEVELS]
            for level, image, value in zip(LEVELS, images, score(images, photo), strict=True):
                rows.append((name, kind, level, value, weak_label(image, photo, label)))
        ladder = score([jpeg_at_quality(photo, q) for q in JPEG_LADDER], photo)
        jpeg_monotone.append(_strictly_falling(ladder))
        q10_below_q90.append(ladder[-1] < ladder[0])
        level1 = {k: v for p, k, lv, v, _ in rows if p == name and lv == 1 and k in LEVEL1_TYPES}
        level1["rescale"] = score(
            [distort(photo, "rescale", 1, level_rng(seed, name, "rescale", 1))], photo
        )[0]
        clean_above += [pristine[-1] > v for v in level1.values()]
        for q, value in zip(JPEG_LADDER, ladder, strict=True):
            by_quality[q].append(value)
        noise = [value for p, k, _, value, _ in rows if p == name and k == NOISE]
        noise_monotone.append(_strictly_falling(noise))
    scores = [r[3] for r in rows]
    per_type = {
        kind: srocc([r[3] for r in rows if r[1] == kind], [r[4] for r in rows if r[1] == kind])
        for kind in DISTORTIONS
    }
    return {
        "images": len(rows),
        "srocc": srocc(scores, [r[4] for r in rows]),
        "level_correlation": mean_level_correlation(
            scores, [r[2] for r in rows], [(r[0], r[1]) for r in rows]
        ),
        "srocc_per_type": per_type,
        "key_types_below_0.7": [k for k in KEY_TYPES if not per_type[k] >= 0.7],
        "jpeg_ladder_monotone_share": float(np.mean(jpeg_monotone)),
        "jpeg_q10_below_q90_share": float(np.mean(q10_below_q90)),
        "clean_above_level1_share": float(np.mean(clean_above)),
        "noise_ladder_monotone_share": float(np.mean(noise_monotone)),
        "pristine": {
            "p50": float(np.median(pristine)),
            "min": float(min(pristine)),
            "max": float(max(pristine)),
        },
        "calibration": {
            "median_by_level": {
                str(lv): float(np.median([r[3] for r in rows if r[2] == lv])) for lv in LEVELS
            },
            "median_by_jpeg_quality": {str(q): float(np.median(v)) for q, v in by_quality.items()},
            "pristine_median": float(np.median(pristine)),
        },
    }


def held_out_photos(folders: list[Path], test: list[str] | None) -> tuple[dict[str, Path], bool]:
    """The photos to evaluate on, and whether they are held out from the defaults' training."""
    if not folders:
        return {p.stem: p for p in sorted((SAMPLES / "nr").iterdir())}, False
    everything = find_photos(folders)
    chosen = set(test) if test else {p for p in everything if split_of(p) == "test"}
    missing = sorted(chosen - set(everything))
    if missing or not chosen:
        sys.exit(f"eval_quality: held-out photos not found in --photos: {missing or 'none'}")
    return {p: everything[p] for p in sorted(chosen)}, True


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--photos", type=Path, action="append", default=[], help="a folder")
    parser.add_argument("--test", nargs="+", help="photo ids (file stems) to evaluate on")
    parser.add_argument("--weights-nr", type=Path, default=default_weights(False))
    parser.add_argument("--weights-fr", type=Path, default=default_weights(True))
    parser.add_argument("--seed", type=int, default=0, help="the synthesis seed")
    parser.add_argument("--long-side", type=int, default=DEFAULT_LONG_SIDE)
    parser.add_argument("--label", choices=sorted(LABELS), default=WEAK_LABEL_VERSION)
    parser.add_argument("--json", type=Path, help="also write the report here")
    parser.add_argument(
        "--only", choices=["nr", "fr"], help="measure one of the two models (a candidate's)"
    )
    args = parser.parse_args()

    paths, held_out = held_out_photos(args.photos, args.test)
    photos = {name: load_photo(str(p), args.long_side) for name, p in sorted(paths.items())}
    report: dict = {
        "photos": sorted(photos),
        "held_out": held_out,
        "label": args.label,
        "seed": args.seed,
    }
    chosen = {"nr": [args.weights_nr], "fr": [args.weights_fr]}.get(args.only or "", [])
    for path in chosen or [args.weights_nr, args.weights_fr]:
        model, meta = load_weights(path.read_bytes())
        result = evaluate(Scorer(model, device="cpu"), photos, args.seed, args.label)
        result.update(weights=str(path), version=meta.version, goals=GOALS[meta.variant])
        report[meta.variant] = result
        print(json.dumps({meta.variant: result}), flush=True)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
