"""Train the shipped default weights (WaDIQaM-NR and WaDIQaM-FR) on synthetic data, offline.

Data: the photographs ``scripts/gather_photos.py`` gathers from packages (about 100 distinct;
``--photos`` is its ``photos/`` folder), split by photo (``split_of``: test photos are never seen
in training or model selection). Each training photo gives ``--crops`` contents: the whole photo
and random multi-scale crops (a side of 35-85 % of the short side), each resized to a long side
of 384 px and distorted with every KADID-style type and level (deepiqa_core.training.synthetic),
labelled with the weak label (``--label``, default weak-v1). The pristine contents join the
training rows too (label 100, ``PRISTINE_COPIES`` rows each), so the networks see what "clean"
is. Validation and test photos are used whole, distorted only, as the evaluation sees them.
Training is `deepiqa train` (the library's trainer, one process); then each model's scale is
calibrated on the validation photos (deepiqa_core.calibration) and written with its card
figures.

    python scripts/gather_photos.py --out build/photos
    python scripts/train_default_weights.py --photos build/photos/photos --device cuda --bf16 \
        --batch-images 32 --max-seconds 120          # a GPU run
    python scripts/train_default_weights.py --photos build/photos/photos --max-seconds 60 \
        --variants wadiqam-nr --distortions gaussian_blur jpeg   # a CPU smoke run
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from PIL import Image  # noqa: E402

from deepiqa_core import DeepIQA, load_weights, save_weights  # noqa: E402
from deepiqa_core.calibration import fit_calibration  # noqa: E402
from deepiqa_core.cli import main as deepiqa  # noqa: E402
from deepiqa_core.datasets import make_manifest, write_manifest  # noqa: E402
from deepiqa_core.imaging import decode_image  # noqa: E402
from deepiqa_core.listing import list_images  # noqa: E402
from deepiqa_core.scoring import Scorer  # noqa: E402
from deepiqa_core.seeding import rng  # noqa: E402
from deepiqa_core.training.distortions import DISTORTIONS  # noqa: E402
from deepiqa_core.training.synthetic import dataset_name, generate_local  # noqa: E402
from deepiqa_core.training.weak_labels import LABELS, WEAK_LABEL_VERSION  # noqa: E402

TEST = ("coffee", "china", "grace_hopper")  # held out since the first defaults: comparable
VALIDATION = ("rocket", "flower")
HELD_OUT_SHARE = 0.08  # further photos per held-out split, chosen by a hash of the photo id
LONG_SIDE = 384
CROP_SIDES = (0.35, 0.85)  # a crop's side, as a share of the photo's short side
PRISTINE_COPIES = 4  # rows per pristine content: clean images are 1 in 125 rows otherwise
CONTENT_SEPARATOR = "@"
CALIBRATION_PER_LEVEL = 150  # <photo>@c<k>: a content's photo is the part before it


def split_of(photo: str) -> str:
    """The photo's split: the named ones first, then a stable hash of its id."""
    if photo in TEST:
        return "test"
    if photo in VALIDATION:
        return "val"
    bucket = int(hashlib.sha256(photo.encode()).hexdigest()[:8], 16) / 16**8
    return "test" if bucket < HELD_OUT_SHARE else "val" if bucket < 2 * HELD_OUT_SHARE else "train"


def find_photos(folders: list[Path]) -> dict[str, Path]:
    """Photo id (file stem) -> file, over the given folders (first one wins)."""
    found: dict[str, Path] = {}
    for folder in folders:
        for uri in list_images(str(folder)):
            found.setdefault(Path(uri).stem, Path(uri))
    return found


def write_contents(photos: dict[str, Path], crops: int, seed: int, out: Path) -> list[str]:
    """Training photos -> ``crops`` contents each (crop 0: the whole photo); the others -> whole.

    Crops are cut from the full-resolution photo (so a 4K wallpaper gives sharp 384 px crops at
    several scales), seeded by (seed, photo, k); written as PNG, named ``<photo>@c<k>``.
    """
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for photo, path in sorted(photos.items()):
        count = crops if split_of(photo) == "train" else 1
        targets = [out / f"{photo}{CONTENT_SEPARATOR}c{k}.png" for k in range(count)]
        paths += [str(t) for t in targets]
        if all(t.exists() for t in targets):  # a rerun: written before, the same seed
            continue
        image = decode_image(path.read_bytes())
        for k, target in enumerate(targets):
            if k == 0:
                content = image
            else:
                r = rng(seed, "crop", photo, k)
                h, w = image.shape[:2]
                side = int(min(h, w) * r.uniform(*CROP_SIDES))
                ch, cw = (side, int(side * 1.5)) if w >= h else (int(side * 1.5), side)
                ch, cw = min(ch, h), min(cw, w)
                y, x = int(r.integers(0, h - ch + 1)), int(r.integers(0, w - cw + 1))
                content = image[y : y + ch, x : x + cw]
            Image.fromarray(content).save(target)
    return paths


def photo_of(content: str) -> str:
    return content.split(CONTENT_SEPARATOR)[0]


def with_pristine_rows(manifest, label: str):
    """The training contents' references as rows of their own: label 100 (an undistorted image
    is 100 in every weak-label version), no distortion, no level."""
    refs = manifest[manifest["split"] == "train"].drop_duplicates("ref_id")
    rows = [
        {
            "id": f"{r.ref_id}__pristine__{copy}",
            "uri": r.ref_uri,
            "ref_uri": r.ref_uri,
            "ref_id": r.ref_id,
            "score": 100.0,
            "score_direction": "higher_better",
            "score_min": 0.0,
            "score_max": 100.0,
            "dataset": dataset_name(label),
            "distortion": None,
            "level": None,
        }
        for r in refs.itertuples()
        for copy in range(PRISTINE_COPIES)
    ]
    pristine = make_manifest(rows)
    pristine["split"] = "train"
    return pristine


def calibration_scores(model: DeepIQA, manifest) -> dict[int, list[float]]:
    """Raw scores of the validation photos by level (0: the photos themselves; FR: against
    themselves), the input of ``fit_calibration``; at most ``CALIBRATION_PER_LEVEL`` images per
    level, an even spread over photos and types (every ``k``-th row of the sorted manifest)."""
    scorer = Scorer(model, device="cpu")
    fr = scorer.full_reference
    val = manifest[(manifest["split"] == "val") & manifest["level"].notna()].sort_values("id")
    read = {}

    def image(uri: str) -> np.ndarray:
        if uri not in read:
            read[uri] = decode_image(Path(uri).read_bytes())
        return read[uri]

    by_level: dict[int, list[float]] = {}
    refs = sorted(set(val["ref_uri"]))
    by_level[0] = [
        r.score
        for r in scorer.score([image(u) for u in refs], [image(u) for u in refs] if fr else None)
    ]
    for level, rows in val.groupby(val["level"].astype(int)):
        rows = rows.iloc[:: max(1, len(rows) // CALIBRATION_PER_LEVEL)]
        images = [image(u) for u in rows["uri"]]
        references = [image(u) for u in rows["ref_uri"]] if fr else None
        by_level[int(level)] = [r.score for r in scorer.score(images, references)]
    return by_level


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("build/default-weights"))
    parser.add_argument(
        "--photos", type=Path, action="append", required=True, help="folder (gather_photos.py)"
    )
    parser.add_argument("--variants", nargs="+", default=["wadiqam-fr", "wadiqam-nr"])
    parser.add_argument("--distortions", nargs="+", default=list(DISTORTIONS))
    parser.add_argument("--label", choices=sorted(LABELS), default=WEAK_LABEL_VERSION)
    parser.add_argument("--crops", type=int, default=2, help="contents per training photo")
    parser.add_argument(
        "--levels",
        type=int,
        nargs="+",
        default=[1, 3, 5],
        help="distortion levels rendered (default 1 3 5: more contents for the same CPU time; "
        "the labels, not the levels, are the targets)",
    )
    parser.add_argument("--epochs", type=int, default=10_000)
    parser.add_argument(
        "--max-seconds",
        type=float,
        nargs="+",
        help="training wall time per variant (one value, or one per variant)",
    )
    parser.add_argument("--batch-images", type=int, default=4)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast (GPU)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--init",
        type=Path,
        nargs="+",
        default=[],
        help="weights files to fine-tune from (matched to variants by their metadata)",
    )
    parser.add_argument("--version", default="0.3.0", help="the new weights' version")
    args = parser.parse_args()
    budget = args.max_seconds or [None]
    if len(budget) == 1:
        budget = budget * len(args.variants)
    if len(budget) != len(args.variants):
        parser.error("--max-seconds takes one value, or one per variant")
    seconds = dict(zip(args.variants, budget, strict=True))

    t0 = time.perf_counter()
    found = find_photos(args.photos)
    splits = {p: split_of(p) for p in found}
    if not {"test", "val"} <= set(splits.values()):
        sys.exit(f"need test and validation photos; found {sorted(found)}")
    used = {p: path for p, path in found.items() if splits[p] != "test"}  # eval_quality's only
    data = args.out / "synthetic"
    contents = write_contents(used, args.crops, args.seed, args.out / "contents")
    manifest = generate_local(
        contents,
        data,
        seed=args.seed,
        long_side=LONG_SIDE,
        distortions=args.distortions,
        levels=args.levels,
        workers=os.cpu_count() or 1,
        label=args.label,
    )
    manifest["split"] = [splits[photo_of(r)] for r in manifest["ref_id"]]
    manifest = pd.concat([manifest, with_pristine_rows(manifest, args.label)], ignore_index=True)
    train_rows = manifest[manifest["split"] == "train"]
    write_manifest(train_rows, data / "manifest-train.parquet")
    counts = {s: sorted(p for p in found if splits[p] == s) for s in ("train", "val", "test")}
    print(
        json.dumps(
            {
                "photos": {s: len(v) for s, v in counts.items()},
                "contents": len(contents),
                "images": len(manifest),
                "data_seconds": round(time.perf_counter() - t0, 1),
            }
        ),
        flush=True,
    )
    inits = {load_weights(p)[1].variant: p for p in args.init}

    summary = {"photos": counts}
    for variant in args.variants:
        run = args.out / f"run-{variant}"
        command = [
            "train",
            "--manifest",
            str(data / "manifest-train.parquet"),
            "--output",
            str(run),
            "--overwrite",
            "--variant",
            variant,
            "--epochs",
            str(args.epochs),
            "--batch-images",
            str(args.batch_images),
            "--device",
            args.device,
            "--seed",
            str(args.seed),
            "--checkpoint-every",
            "10",
        ]
        command += ["--max-seconds", str(seconds[variant])] if seconds[variant] else []
        command += ["--bf16"] if args.bf16 else []
        command += ["--init", str(inits[variant])] if variant in inits else []
        started = time.perf_counter()
        if deepiqa(command) != 0:
            sys.exit(f"training {variant} failed")
        train_seconds = time.perf_counter() - started
        report = json.loads((run / "report.json").read_text())
        model, meta = load_weights(run / "model.safetensors")
        calibration = fit_calibration(calibration_scores(model, manifest))
        meta.calibration = calibration.to_dict()
        meta.score_name = (
            f"quality, 0-100 ({calibration.version}: clean photos ~90, each KADID level ~15 lower;"
            f" trained on the {dataset_name(args.label)} label)"
        )
        meta.score_range = [0.0, 100.0]
        meta.metrics = {
            "epochs_run": report["epochs_run"],
            "train_seconds": round(train_seconds),
            "train_images_seen": sum(h.get("images", 0) for h in report["history"]),
        }
        meta.training_data += (
            f"; {len(counts['train'])} photos x {args.crops} crops, split by photo "
            f"(validation {len(counts['val'])}, held-out test {len(counts['test'])}); "
            f"init {inits[variant].name if variant in inits else 'random'}"
        )
        meta.version = args.version
        save_weights(model, args.out / f"{variant}.safetensors", meta, half=True)
        summary[variant] = {**meta.metrics, "calibration": meta.calibration}
        print(json.dumps({variant: summary[variant]}), flush=True)
    (args.out / "training-report.json").write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
