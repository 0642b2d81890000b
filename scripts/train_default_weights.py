"""Train the shipped default weights (WaDIQaM-NR and WaDIQaM-FR) on synthetic data, offline.

Data: photographs that installed packages ship (scikit-image, scikit-learn, matplotlib), resized
to a long side of 384 px, each distorted with every type and level of
``deepiqa_core.training.distortions`` and labelled with the ``weak-v0`` weak label. Photos are
split by source: TEST photos are never seen in training or model selection.

    python scripts/train_default_weights.py --out build/default --seconds 100 \\
        --device cuda --batch-images 32            # what made the shipped files (see MODEL_CARD)
    python scripts/train_default_weights.py --photos skimage/data --steps 20   # a CPU smoke run
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from deepiqa_core import DeepIQA, WeightsMeta, load_weights, save_weights  # noqa: E402
from deepiqa_core.evaluation.metrics import mean_level_correlation, plcc, srocc  # noqa: E402
from deepiqa_core.training.distortions import DISTORTIONS, LEVELS, distort  # noqa: E402
from deepiqa_core.training.trainer import Sample, TrainConfig, predict, train  # noqa: E402
from deepiqa_core.training.weak_labels import WEAK_LABEL_VERSION, weak_label  # noqa: E402

PHOTOS = {  # stem -> package-relative folders that may hold it
    "astronaut": "skimage/data",
    "chelsea": "skimage/data",
    "coffee": "skimage/data",
    "rocket": "skimage/data",
    "motorcycle_left": "skimage/data",
    "motorcycle_right": "skimage/data",
    "hubble_deep_field": "skimage/data",
    "ihc": "skimage/data",
    "retina": "skimage/data",
    "camera": "skimage/data",
    "moon": "skimage/data",
    "brick": "skimage/data",
    "grass": "skimage/data",
    "gravel": "skimage/data",
    "coins": "skimage/data",
    "china": "sklearn/datasets/images",
    "flower": "sklearn/datasets/images",
    "grace_hopper": "matplotlib/mpl-data/sample_data",
}
TEST = ("coffee", "china", "grace_hopper")
VALIDATION = ("rocket", "flower")
LONG_SIDE = 384


def find_photos(extra: list[Path]) -> dict[str, Path]:
    folders = list(extra)
    for rel in sorted(set(PHOTOS.values())):
        package, _, sub = rel.partition("/")
        spec = importlib.util.find_spec(package)
        if spec and spec.submodule_search_locations:
            folders.append(Path(spec.submodule_search_locations[0]) / sub)
    found = {}
    for stem in PHOTOS:
        for folder in folders:
            hits = sorted(p for p in folder.glob(f"{stem}.*") if p.suffix in (".png", ".jpg"))
            if hits:
                found[stem] = hits[0]
                break
    return found


def load_photo(path: Path) -> np.ndarray:
    img = Image.open(path).convert("RGB")
    scale = LONG_SIDE / max(img.size)
    size = (round(img.width * scale), round(img.height * scale))
    return np.asarray(img.resize(size, Image.LANCZOS))


def _distort_photo(name: str, ref: np.ndarray, seed: int) -> list[Sample]:
    rng = np.random.default_rng(seed)
    samples = []
    for kind in DISTORTIONS:
        for level in LEVELS:
            dist = distort(ref, kind, level, rng)
            samples.append(Sample(dist, ref, weak_label(dist, ref), name, kind, level))
    return samples


def synthetic_set(photos: dict[str, np.ndarray], seed: int) -> list[Sample]:
    """Every photo x type x level, one process per photo (seeded per photo, so reproducible)."""
    names = sorted(photos)
    with ProcessPoolExecutor() as pool:
        parts = pool.map(
            _distort_photo,
            names,
            [photos[n] for n in names],
            [seed + i for i, _ in enumerate(names)],
        )
        return [s for part in parts for s in part]


def held_out_report(model: DeepIQA, test: list[Sample], device: str) -> dict[str, float]:
    scores = predict(model, test, device)
    labels = [s.label for s in test]
    return {
        "test_srocc": srocc(scores, labels),
        "test_plcc": plcc(scores, labels),
        "test_level_correlation": mean_level_correlation(
            scores, [s.level for s in test], [(s.source, s.kind) for s in test]
        ),
        "test_images": len(test),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("build/default-weights"))
    parser.add_argument(
        "--photos",
        type=Path,
        action="append",
        default=[],
        help="extra folder to look for the photos in",
    )
    parser.add_argument("--variants", nargs="+", default=["wadiqam-fr", "wadiqam-nr"])
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, help="training wall time per variant")
    parser.add_argument("--batch-images", type=int, default=4)
    parser.add_argument("--eval-every", type=int, default=200)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast (GPU)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--init",
        type=Path,
        action="append",
        default=[],
        help="start a variant from these weights instead of random init (continue training)",
    )
    args = parser.parse_args()

    t0 = time.perf_counter()
    found = find_photos(args.photos)
    photos = {name: load_photo(path) for name, path in found.items()}
    split = {
        name: "test" if name in TEST else "val" if name in VALIDATION else "train"
        for name in photos
    }
    sets = {
        part: synthetic_set({n: p for n, p in photos.items() if split[n] == part}, args.seed)
        for part in ("train", "val", "test")
    }
    print(
        json.dumps(
            {
                "photos": split,
                "samples": {k: len(v) for k, v in sets.items()},
                "data_seconds": round(time.perf_counter() - t0, 1),
            }
        ),
        flush=True,
    )
    args.out.mkdir(parents=True, exist_ok=True)
    device_name = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else "cpu"
    card = {}
    inits = {load_weights(p)[1].variant: p for p in args.init}
    n_train = sum(part == "train" for part in split.values())
    for variant in args.variants:
        torch.manual_seed(args.seed)
        config = TrainConfig(
            steps=args.steps,
            seconds=args.seconds,
            batch_images=args.batch_images,
            eval_every=args.eval_every,
            seed=args.seed,
            device=args.device,
            autocast_dtype=torch.bfloat16 if args.bf16 else None,
            start_at_label_mean=variant not in inits,
        )
        model = load_weights(inits[variant])[0] if variant in inits else DeepIQA(variant)
        result = train(
            model,
            sets["train"],
            sets["val"],
            config,
            log=lambda r, v=variant: print(json.dumps({v: r}), flush=True),
        )
        report = held_out_report(result.model, sets["test"], args.device)
        metrics = {
            **{k: round(v, 4) if isinstance(v, float) else v for k, v in report.items()},
            "val_srocc": round(result.best_val_srocc, 4),
            "best_step": result.best_step,
            "steps": result.steps_run,
            "train_seconds": round(result.seconds, 1),
        }
        meta = WeightsMeta(
            variant=variant,
            score_direction="higher_better",
            score_name=f"quality ({WEAK_LABEL_VERSION} weak label)",
            score_range=[0.0, 100.0],
            training_data=(
                f"synthetic: {len(sets['train'])} images from {n_train} package-shipped photos x "
                f"{len(DISTORTIONS)} KADID-style distortion types x 5 levels, labels "
                f"{WEAK_LABEL_VERSION}; validation photos {list(VALIDATION)}, test photos "
                f"{list(TEST)} held out"
            ),
            metrics=metrics,
            source=(
                f"scripts/train_default_weights.py{''.join(f' --init {p}' for p in args.init)}"
                f" --seconds {args.seconds} --batch-images "
                f"{args.batch_images} --device {args.device}{' --bf16' if args.bf16 else ''} "
                f"--seed {args.seed} on {device_name}"
            ),
            version="0.1.0",
            description=f"deepiqa default {variant}, trained on synthetic data with weak labels",
        )
        path = args.out / f"{variant}.safetensors"
        save_weights(result.model.cpu(), path, meta, half=True)
        card[variant] = {"file": path.name, **metrics, "history": result.history}
        print(json.dumps({variant: metrics}), flush=True)
    (args.out / "training-report.json").write_text(
        json.dumps(
            {
                "photos": split,
                "device": device_name,
                "args": vars(args)
                | {"out": str(args.out), "photos": [str(p) for p in args.photos]},
                "variants": card,
            },
            indent=2,
            default=str,
        )
    )


if __name__ == "__main__":
    main()
