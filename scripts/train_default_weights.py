"""Train the shipped default weights (WaDIQaM-NR and WaDIQaM-FR) on synthetic data, offline.

Data: photographs that installed packages ship (scikit-image, scikit-learn, matplotlib), long side
384 px, each distorted with every KADID-style type and level (deepiqa_core.training.synthetic)
and labelled with the weak label. The split is by photo and fixed: TEST photos are never seen in
training or model selection. Training is `deepiqa train` (the library's trainer, one process).

    python scripts/train_default_weights.py --out build/default --device cuda --bf16 \\
        --batch-images 32 --max-seconds 120          # a GPU run (see the model card)
    python scripts/train_default_weights.py --photos /tmp/sk --variants wadiqam-nr \\
        --max-seconds 60 --distortions gaussian_blur jpeg   # a CPU smoke run
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from deepiqa_core import DeepIQA, WeightsMeta, load_weights, save_weights  # noqa: E402
from deepiqa_core.cli import main as deepiqa  # noqa: E402
from deepiqa_core.datasets import write_manifest  # noqa: E402
from deepiqa_core.training.distortions import DISTORTIONS  # noqa: E402
from deepiqa_core.training.synthetic import generate_local  # noqa: E402

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


def transplant_features(fr_weights: Path, variant: str, label_mean: float, out: Path) -> None:
    """An NR network whose conv stack is the FR model's and whose heads are fresh."""
    fr, fr_meta = load_weights(fr_weights)
    torch.manual_seed(0)
    model = DeepIQA(variant)
    model.features.load_state_dict(fr.features.state_dict())
    with torch.no_grad():
        model.quality_output.bias.fill_(label_mean)  # as a fresh run starts: at the mean label
    meta = WeightsMeta(
        variant=variant,
        score_direction=fr_meta.score_direction,
        training_data=f"conv stack from {fr_weights.name}; heads untrained",
    )
    save_weights(model, out, meta)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("build/default-weights"))
    parser.add_argument("--photos", type=Path, action="append", default=[], help="extra folder")
    parser.add_argument("--variants", nargs="+", default=["wadiqam-fr", "wadiqam-nr"])
    parser.add_argument("--distortions", nargs="+", default=list(DISTORTIONS))
    parser.add_argument("--epochs", type=int, default=10_000)
    parser.add_argument("--max-seconds", type=float, help="training wall time per variant")
    parser.add_argument("--batch-images", type=int, default=4)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast (GPU)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--nr-features-from",
        type=Path,
        help="start NR variants from this FR file's conv stack (shared-weight Siamese features, "
        "trained on the same training photos) instead of random init",
    )
    args = parser.parse_args()

    t0 = time.perf_counter()
    found = find_photos(args.photos)
    if not (set(TEST) & set(found) and set(VALIDATION) & set(found)):
        sys.exit(f"need at least one test and one validation photo; found {sorted(found)}")
    data = args.out / "synthetic"
    manifest = generate_local(
        [str(p) for p in found.values()],
        data,
        seed=args.seed,
        long_side=LONG_SIDE,
        distortions=args.distortions,
        workers=os.cpu_count() or 1,
    )
    manifest["split"] = [
        "test" if r in TEST else "val" if r in VALIDATION else "train" for r in manifest["ref_id"]
    ]
    write_manifest(manifest, data / "manifest-split.parquet")
    print(
        json.dumps(
            {
                "photos": sorted(found),
                "images": len(manifest),
                "data_seconds": round(time.perf_counter() - t0, 1),
            }
        ),
        flush=True,
    )
    summary = {}
    for variant in args.variants:
        run = args.out / f"run-{variant}"
        command = [
            "train",
            "--manifest",
            str(data / "manifest-split.parquet"),
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
        command += ["--max-seconds", str(args.max_seconds)] if args.max_seconds else []
        command += ["--bf16"] if args.bf16 else []
        if args.nr_features_from and variant.endswith("-nr"):
            init = args.out / f"init-{variant}.safetensors"
            train_mean = float(manifest.loc[manifest["split"] == "train", "score"].mean())
            transplant_features(args.nr_features_from, variant, train_mean, init)
            command += ["--init", str(init)]
        if deepiqa(command) != 0:
            sys.exit(f"training {variant} failed")
        report = json.loads((run / "report.json").read_text())
        test = next(iter(report["reports"]["test"]["datasets"].values()))
        model, meta = load_weights(run / "model.safetensors")
        meta.metrics = {
            "test_srocc": test["srocc"],
            "test_plcc": test["plcc"],
            "test_level_correlation": test["level_correlation"],
            "test_images": test["images"],
            "val_srocc": report["val_srocc"],
            "best_epoch": report["best_epoch"],
            "epochs_run": report["epochs_run"],
        }
        meta.training_data += f"; split by photo: validation {list(VALIDATION)}, test {list(TEST)}"
        meta.version = "0.2.0"
        save_weights(model, args.out / f"{variant}.safetensors", meta, half=True)
        summary[variant] = meta.metrics
        print(json.dumps({variant: meta.metrics}), flush=True)
    (args.out / "training-report.json").write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
