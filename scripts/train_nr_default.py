"""Train the shipped no-reference default (WaDIQaM-NR) on a CPU: ladders, a ranking loss, and
the lower convs computed once.

One command, resumable (every stage keeps its results under ``--work`` and skips what is done):

    python scripts/gather_photos.py --out build/photos
    python scripts/train_nr_default.py --photos build/photos/photos --work build/nr

Stages:

1. **prepare** -- each training photo gives ``--crops`` contents (``write_contents`` of
   ``train_default_weights.py``: the whole photo and multi-scale crops, split by photo, test
   photos never read). Each content becomes a ladder (``deepiqa_core.training.ladders``: the
   pristine content plus levels 1-5 of the media-library and key KADID types and ``--others``
   drawn KADID types), weak-labelled; ``--patches`` grid cells per content (the same cells on
   every rung) go through the frozen convs 1-8 of ``--init`` once
   (``deepiqa_core.training.trunk_cache``); the (256, 2, 2) outputs are kept, one file per
   content. Validation photos are kept whole (every grid patch, all 30 types and a JPEG
   ladder), so validation scores equal the scorer's.
2. **fit** -- convs 9-10 and both heads train on the kept outputs, batches of whole ladders,
   loss = L1 to the weak label + ``--rank-weight`` x the ladder hinge, AdamW with warm-up and
   cosine decay; after every epoch the model is measured on validation (ladders, per-type
   SROCC, clean vs level 1) and the best epoch is kept. A checkpoint (model + optimiser) is
   written each epoch: ``--resume`` goes on from it.
3. **finish** -- the best model is calibrated on the validation photos (``cal-v1``) and written
   as ``OUT/wadiqam-nr.safetensors`` with its figures and the compute it took.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from train_default_weights import (  # noqa: E402
    LONG_SIDE,
    find_photos,
    split_of,
    write_contents,
)

from deepiqa_core import load_weights, save_weights  # noqa: E402
from deepiqa_core.calibration import fit_calibration  # noqa: E402
from deepiqa_core.defaults import default_weights  # noqa: E402
from deepiqa_core.evaluation.metrics import mean_level_correlation, srocc  # noqa: E402
from deepiqa_core.patches import grid_for  # noqa: E402
from deepiqa_core.seeding import derive_seed, rng  # noqa: E402
from deepiqa_core.training.distortions import (  # noqa: E402
    ALL_DISTORTIONS,
    jpeg_at_quality,
)
from deepiqa_core.training.distortions import (
    MEDIA_DISTORTIONS as MEDIA,
)
from deepiqa_core.training.ladders import (  # noqa: E402
    KEY_TYPES,
    PRISTINE,
    ladder_batches,
    ladder_loss,
    ladder_pairs,
    ladder_types,
    patch_rows,
    pool_images,
    render_ladder,
)
from deepiqa_core.training.synthetic import load_photo  # noqa: E402
from deepiqa_core.training.trunk_cache import SPLIT, LowerTrunk, Top, lower_features  # noqa: E402
from deepiqa_core.training.weak_labels import WEAK_LABEL_VERSION, weak_label  # noqa: E402

JPEG_LADDER = (90, 75, 50, 30, 10)  # the evaluation's qualities (validation photos only here)
LADDER_KIND = "jpeg_ladder"
LEVEL1_KINDS = ("jpeg_quality", "gaussian_blur", "white_noise", "rescale")
VAL_CELLS = 48  # --keep-patches: grid cells kept per validation image (the same on each rung)


# --- stage 1: prepare ---------------------------------------------------------------------------
_TRUNK: LowerTrunk | None = None  # None: keep the patches' pixels (--keep-patches)


def initial_model(init: Path, trunk_from: Path | None):
    """``--init``'s model and metadata; with ``--trunk-from``, its convs 1-8 replaced by that
    file's (e.g. the FR default's, trained on differences to a reference, where NR 0.3.0's
    lower convs were found JPEG-blind). Every stage builds the model this way, so the kept
    lower outputs, the fit and the written weights agree."""
    model, meta = load_weights(init.read_bytes())
    if trunk_from is not None:
        donor, _ = load_weights(trunk_from.read_bytes())
        model.features[:SPLIT].load_state_dict(donor.features[:SPLIT].state_dict())
    return model, meta


def _init_worker(init: str, trunk_from: str, keep_patches: bool) -> None:
    global _TRUNK
    torch.set_num_threads(1)
    if keep_patches:  # the end-to-end fit reads pixels: no trunk to run here
        return
    model, _ = initial_model(Path(init), Path(trunk_from) if trunk_from else None)
    _TRUNK = LowerTrunk(model)


def _cells(image: np.ndarray, count: int | None, key: str, seed: int) -> np.ndarray:
    """Top-left corners of ``count`` grid cells drawn by (seed, key), or all of them."""
    grid = grid_for(*image.shape[:2])
    ys, xs = grid.positions()
    if count is not None and count < grid.count:
        chosen = np.sort(rng(seed, "cells", key).choice(grid.count, count, replace=False))
        ys, xs = ys[chosen], xs[chosen]
    return np.stack([ys, xs], 1)


def _patches(images: list[np.ndarray], cells: np.ndarray) -> np.ndarray:
    return np.stack([img[y : y + 32, x : x + 32] for img in images for y, x in cells])


def _write(path: Path, **arrays) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def prepare_one(job: tuple[str, str, str, int, int, int | None, str]) -> str:
    """One content's (or validation photo's) ladder -> kept lower outputs in ``target``."""
    name, uri, target, seed, others, patches, label = job
    image = load_photo(uri, LONG_SIDE)
    if patches is None:  # validation: every type, and the evaluation's JPEG ladder
        ladder = render_ladder(name, image, list(ALL_DISTORTIONS), seed, label)
        extra = [jpeg_at_quality(image, q) for q in JPEG_LADDER]
        images = ladder.images + extra
        kinds = ladder.kinds + [LADDER_KIND] * len(extra)
        levels = np.concatenate([ladder.levels, np.arange(1, len(extra) + 1)])
        labels = np.concatenate([ladder.labels, [weak_label(x, image, label) for x in extra]])
    else:
        ladder = render_ladder(name, image, ladder_types(name, seed, others), seed, label)
        images, kinds, levels, labels = ladder.images, ladder.kinds, ladder.levels, ladder.labels
    meta = {
        "kinds": np.asarray(kinds),
        "levels": np.asarray(levels, np.int64),
        "labels": np.asarray(labels, np.float32),
    }
    if _TRUNK is None:  # --keep-patches: the pixels (val: VAL_CELLS cells of each image)
        cells = _cells(image, patches or VAL_CELLS, name, seed)
        pixels = _patches(images, cells).reshape(len(images), len(cells), 32, 32, 3)
        _write(Path(target), patches=pixels, **meta)
        return name
    cells = _cells(image, patches, name, seed)
    lower = lower_features(_TRUNK, _patches(images, cells))
    lower = lower.reshape(len(images), len(cells), *lower.shape[1:])
    _write(Path(target), lower=lower.astype(np.float16 if patches else np.float32), **meta)
    return name


def prepare(args: argparse.Namespace) -> None:
    found = find_photos(args.photos)
    split = {p: split_of(p) for p in found}
    train = {p: path for p, path in found.items() if split[p] == "train"}
    val = {p: path for p, path in found.items() if split[p] == "val"}
    contents = write_contents(train, args.crops, args.seed, args.work / "contents")
    (args.work / "train").mkdir(parents=True, exist_ok=True)
    (args.work / "val").mkdir(parents=True, exist_ok=True)
    jobs = [
        (p, str(path), str(args.work / "val" / f"{p}.npz"), args.seed, 0, None, args.label)
        for p, path in sorted(val.items())
    ] + [
        (
            Path(c).stem,
            c,
            str(args.work / "train" / f"{Path(c).stem}.npz"),
            args.seed,
            args.others,
            args.patches,
            args.label,
        )
        for c in contents
    ]
    todo = [j for j in jobs if not Path(j[2]).exists()]
    print(json.dumps({"stage": "prepare", "jobs": len(jobs), "todo": len(todo)}), flush=True)
    started = time.perf_counter()
    with ProcessPoolExecutor(
        args.workers,
        initializer=_init_worker,
        initargs=(str(args.init), str(args.trunk_from or ""), args.keep_patches),
    ) as pool:
        for i, name in enumerate(pool.map(prepare_one, todo), 1):
            if i % 10 == 0 or i == len(todo):
                print(
                    f"prepared {i}/{len(todo)} ({name}) {time.perf_counter() - started:.0f}s",
                    flush=True,
                )
    _add_compute(args.work, "prepare", time.perf_counter() - started, args.workers)


def _add_compute(work: Path, stage: str, seconds: float, cores: int) -> None:
    """CPU-hours spent, by stage, across sittings (the card reports the total)."""
    path = work / "compute.json"
    spent = json.loads(path.read_text()) if path.exists() else {}
    spent[stage] = round(spent.get(stage, 0.0) + seconds * cores / 3600, 4)
    path.write_text(json.dumps(spent, indent=2))


# --- stage 2: fit -------------------------------------------------------------------------------
def _load(folder: Path, dtype: torch.dtype) -> dict:
    """Every kept ladder in ``folder``: lower outputs per patch, and per image its content,
    kind, level and label; ``start[i]:start[i+1]`` are image i's patch rows."""
    lowers, names, kinds, levels, labels, counts = [], [], [], [], [], []
    for k, path in enumerate(sorted(folder.glob("*.npz"))):
        with np.load(path) as f:
            lower = torch.from_numpy(f["lower"])
            lowers.append(lower.reshape(-1, *lower.shape[2:]).to(dtype))
            n, per = lower.shape[:2]
            names += [k] * n
            kinds += list(f["kinds"])
            levels.append(f["levels"])
            labels.append(f["labels"])
            counts += [per] * n
    start = np.concatenate([[0], np.cumsum(counts)])
    return {
        "lower": torch.cat(lowers),
        "content": np.asarray(names),
        "kinds": np.asarray(kinds),
        "levels": np.concatenate(levels),
        "labels": np.concatenate(labels).astype(np.float32),
        "start": start,
        "files": sorted(p.stem for p in folder.glob("*.npz")),
    }


def _patch_image(start: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.repeat(np.arange(len(start) - 1), np.diff(start)))


@torch.no_grad()
def _upper(top: Top, lower: torch.Tensor, rows: int = 4096) -> torch.Tensor:
    top.eval()
    return torch.cat(
        [top.upper()(lower[i : i + rows].float()).flatten(1) for i in range(0, len(lower), rows)]
    )


@torch.no_grad()
def _image_scores(top: Top, data: dict, features: torch.Tensor | None) -> np.ndarray:
    """Raw image scores (eval mode): through the heads of kept upper features, or the whole
    top over the lower outputs."""
    top.eval()
    feats = features if features is not None else _upper(top, data["lower"])
    y, alpha = top.model.heads(feats)
    index = _patch_image(data["start"])
    return pool_images(y.double(), alpha.double(), index, len(data["start"]) - 1).numpy()


def validation_report(scores: np.ndarray, val: dict) -> dict:
    """The issue's measures on the validation photos (raw scores; calibration is monotone)."""
    kinds, levels, labels, content = val["kinds"], val["levels"], val["labels"], val["content"]
    kadid = np.isin(kinds, [k for k in ALL_DISTORTIONS if k not in MEDIA]) & (levels > 0)
    per_type = {k: srocc(scores[kinds == k], labels[kinds == k]) for k in KEY_TYPES}
    ladders, q10_below_q90, clean_above = [], [], []
    for c in np.unique(content):
        mine = content == c
        ladder = scores[mine & (kinds == LADDER_KIND)][
            np.argsort(levels[mine & (kinds == LADDER_KIND)])
        ]
        ladders.append(bool(np.all(np.diff(ladder) < 0)))
        q10_below_q90.append(bool(ladder[-1] < ladder[0]))
        clean = scores[mine & (levels == 0)][0]
        clean_above += [
            bool(clean > s) for s in scores[mine & np.isin(kinds, LEVEL1_KINDS) & (levels == 1)]
        ]
    groups = [f"{c}/{k}" for c, k in zip(content[kadid], kinds[kadid], strict=True)]
    report = {
        "srocc": srocc(scores[kadid], labels[kadid]),
        "level_correlation": mean_level_correlation(scores[kadid], levels[kadid], groups),
        "srocc_per_type": per_type,
        "jpeg_ladder_monotone_share": float(np.mean(ladders)),
        "q10_below_q90_share": float(np.mean(q10_below_q90)),
        "clean_above_level1_share": float(np.mean(clean_above)),
    }
    report["objective"] = float(
        np.mean(
            [
                np.mean(list(per_type.values())),
                report["srocc"],
                -report["level_correlation"],
                report["jpeg_ladder_monotone_share"],
                report["clean_above_level1_share"],
            ]
        )
    )
    return report


def _lr(step: int, total: int, warmup: int, peak: float) -> float:
    """Linear warm-up, then cosine decay to 5 % of the peak."""
    if step < warmup:
        return peak * (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup)
    return peak * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * t)))


def step_loss(args, q, train: dict, images, labels, levels) -> tuple[torch.Tensor, dict]:
    """One step's ladder loss over the image scores ``q`` of ``images`` (both fit stages)."""
    better, worse = ladder_pairs(
        train["content"][images], train["kinds"][images], train["levels"][images]
    )
    return ladder_loss(
        q,
        labels[images],
        torch.from_numpy(better),
        torch.from_numpy(worse),
        levels[images],
        margin=args.margin,
        l1_weight=args.l1_weight,
        rank_weight=args.rank_weight,
        weights=torch.where(levels[images] == 0, args.pristine_weight, 1.0),
    )


def fit_stage(
    args,
    name: str,
    top: Top,
    train: dict,
    val: dict,
    epochs: int,
    lr: float,
    heads_only: bool,
    state: dict,
) -> None:
    """Train the heads (``heads_only``: on upper features computed once) or the whole top;
    after each epoch, validation decides whether this is the best model so far."""
    params = list(top.model.quality.parameters()) + list(top.model.weight.parameters())
    if not heads_only:
        params += list(top.upper().parameters())
    for p in top.model.parameters():
        p.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
    optimiser = torch.optim.AdamW(params, lr=lr, weight_decay=1e-4)
    feats = _upper(top, train["lower"]) if heads_only else None
    val_feats = _upper(top, val["lower"]) if heads_only else None
    steps_per_epoch = math.ceil((int(train["content"].max()) + 1) / args.contents_per_batch)
    total, warmup = epochs * steps_per_epoch, steps_per_epoch
    stage = state.setdefault("stages", {}).setdefault(name, {"epochs_done": 0})
    if stage.get("optimiser") is not None:
        optimiser.load_state_dict(stage["optimiser"])
    step = stage["epochs_done"] * steps_per_epoch
    labels = torch.from_numpy(train["labels"])
    levels = torch.from_numpy(train["levels"])
    for epoch in range(stage["epochs_done"], epochs):
        started = time.perf_counter()
        torch.manual_seed(derive_seed(args.seed, name, epoch))
        top.train()
        parts = []
        for images in ladder_batches(train["content"], args.contents_per_batch, epoch, args.seed):
            for group in optimiser.param_groups:
                group["lr"] = _lr(step, total, warmup, lr)
            rows, index = patch_rows(
                train["start"], train["content"], images, args.patches_per_step, step, args.seed
            )
            if heads_only:
                y, alpha = top.model.heads(feats[rows])
            else:
                y, alpha = top(train["lower"][rows].float())
            q = pool_images(y, alpha, index, len(images))
            loss, part = step_loss(args, q, train, images, labels, levels)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            parts.append(part)
            step += 1
        scores = _image_scores(top, val, val_feats)
        report = validation_report(scores, val)
        seconds = time.perf_counter() - started
        record = {
            "stage": name,
            "epoch": epoch + 1,
            "seconds": round(seconds, 1),
            "l1": float(np.mean([p["l1"] for p in parts])),
            "rank": float(np.mean([p["rank"] for p in parts])),
            **report,
        }
        print(json.dumps(record), flush=True)
        state.setdefault("history", []).append(record)
        stage["epochs_done"] = epoch + 1
        stage["optimiser"] = optimiser.state_dict()
        if report["objective"] > state.get("best_objective", -math.inf):
            state["best_objective"] = report["objective"]
            state["best"] = {k: v.clone() for k, v in top.model.state_dict().items()}
            state["best_record"] = record
        _add_compute(args.work, name, seconds, torch.get_num_threads())
        _save_state(args.work, state)


def _save_state(work: Path, state: dict) -> None:
    tmp = work / ".fit-state.pt.tmp"
    torch.save(state, tmp)
    os.replace(tmp, work / "fit-state.pt")


def reinit_top(model, seed: int) -> None:
    """Fresh convs 9-10 and heads (PyTorch's default init, the quality bias at the label's
    pristine end): the top learns the kept conv-8 outputs from scratch instead of starting in
    the 0.3.0 default's optimum, whose conv-10 features a ridge probe finds JPEG-blind."""
    torch.manual_seed(derive_seed(seed, "reinit-top"))
    for module in [*Top(model).upper(), *model.quality, *model.weight]:
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
    with torch.no_grad():
        model.quality_output.bias.fill_(50.0)


def set_dropout(model, p: float) -> None:
    """The heads' dropout rate while training (0.5 in the paper; inference never uses it)."""
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = p


def fit(args) -> None:
    train = _load(args.work / "train", torch.float16)
    val = _load(args.work / "val", torch.float32)
    print(
        json.dumps(
            {
                "stage": "fit",
                "train_images": len(train["labels"]),
                "train_patches": len(train["lower"]),
                "val_images": len(val["labels"]),
            }
        ),
        flush=True,
    )
    model, _ = initial_model(args.init, args.trunk_from)
    model.calibration = None  # training works on the label's scale
    path = args.work / "fit-state.pt"
    state = torch.load(path, weights_only=True) if args.resume and path.exists() else {}
    if state.get("model"):
        model.load_state_dict(state["model"])
    if args.reinit_top and not state.get("model"):
        reinit_top(model, args.seed)
    set_dropout(model, args.dropout)
    top = Top(model)
    if "baseline" not in state:
        state["baseline"] = validation_report(_image_scores(top, val, None), val)
        print(json.dumps({"baseline": state["baseline"]}), flush=True)
    for name, epochs, lr, heads_only in (
        ("heads", args.head_epochs, args.head_lr, True),
        ("top", args.top_epochs, args.top_lr, False),
    ):
        if epochs:
            fit_stage(args, name, top, train, val, epochs, lr, heads_only, state)
            state["model"] = {k: v.clone() for k, v in model.state_dict().items()}
            _save_state(args.work, state)


# --- stage 2b: end to end (every conv) -----------------------------------------------------------
def _load_patches(folder: Path) -> dict:
    """``_load`` for --keep-patches folders: uint8 pixels per patch row instead of lower
    outputs (~3 KB a patch: 400k training patches are 1.2 GB)."""
    pixels, names, kinds, levels, labels, counts = [], [], [], [], [], []
    for k, path in enumerate(sorted(folder.glob("*.npz"))):
        with np.load(path) as f:
            n, per = f["patches"].shape[:2]
            pixels.append(torch.from_numpy(f["patches"].reshape(n * per, 32, 32, 3)))
            names += [k] * n
            kinds += list(f["kinds"])
            levels.append(f["levels"])
            labels.append(f["labels"])
            counts += [per] * n
    return {
        "patches": torch.cat(pixels),
        "content": np.asarray(names),
        "kinds": np.asarray(kinds),
        "levels": np.concatenate(levels),
        "labels": np.concatenate(labels).astype(np.float32),
        "start": np.concatenate([[0], np.cumsum(counts)]),
    }


def _as_input(pixels: torch.Tensor) -> torch.Tensor:
    return pixels.permute(0, 3, 1, 2).float().div_(255.0)


@torch.no_grad()
def _full_scores(model, data: dict, rows: int = 1024) -> np.ndarray:
    """Raw image scores of every image in ``data`` through the whole network (eval mode)."""
    model.eval()
    ys, alphas = [], []
    for i in range(0, len(data["patches"]), rows):
        y, alpha = model(_as_input(data["patches"][i : i + rows]))
        ys.append(y)
        alphas.append(alpha)
    index = _patch_image(data["start"])
    y, alpha = torch.cat(ys).double(), torch.cat(alphas).double()
    return pool_images(y, alpha, index, len(data["start"]) - 1).numpy()


def sample_rungs(train: dict, images: np.ndarray, args, step: int) -> np.ndarray:
    """With ``--kinds-per-step K``: of each content's ladder, the pristine rung and every level
    of K kinds drawn by ``--kind-weight`` (e.g. the JPEG family up) -- more contents and more
    optimiser steps per CPU-second than whole ladders, and the rare kinds seen more often."""
    if not args.kinds_per_step:
        return images
    kept = []
    for content in np.unique(train["content"][images]):
        mine = images[train["content"][images] == content]
        kinds = sorted(set(train["kinds"][mine]) - {PRISTINE})
        weights = np.array([args.kind_weight.get(k, 1.0) for k in kinds])
        draw = rng(args.seed, "rungs", step, int(content)).choice(
            len(kinds),
            min(args.kinds_per_step, len(kinds)),
            replace=False,
            p=weights / weights.sum(),
        )
        chosen = {kinds[i] for i in draw} | {PRISTINE}
        kept.append(mine[np.isin(train["kinds"][mine], list(chosen))])
    return np.concatenate(kept)


def _kind_weights(text: str) -> dict[str, float]:
    """``jpeg_quality=3,double_jpeg=3`` -> {kind: weight} (unnamed kinds weigh 1)."""
    pairs = [item.split("=") for item in text.split(",") if item]
    return {k.strip(): float(v) for k, v in pairs}


def fit_full(args) -> None:
    """Every conv and both heads, on pixels (``--keep-patches``): where the kept conv-8
    outputs were found JPEG-blind, only the lower convs can learn to see JPEG. Validation
    every ``--eval-every`` steps; the best model and a resumable state kept each time."""
    train, val = _load_patches(args.work / "train"), _load_patches(args.work / "val")
    model, _ = initial_model(args.init, args.trunk_from)
    model.calibration = None
    set_dropout(model, args.dropout)
    path = args.work / "fit-state.pt"
    state = torch.load(path, weights_only=True) if args.resume and path.exists() else {}
    if state.get("model"):
        model.load_state_dict(state["model"])
    optimiser = torch.optim.AdamW(model.parameters(), lr=args.top_lr, weight_decay=1e-4)
    if state.get("optimiser"):
        optimiser.load_state_dict(state["optimiser"])
    if "baseline" not in state:
        state["baseline"] = validation_report(_full_scores(model, val), val)
        print(json.dumps({"baseline": state["baseline"]}), flush=True)
    steps_per_epoch = math.ceil((int(train["content"].max()) + 1) / args.contents_per_batch)
    total = args.top_epochs * steps_per_epoch
    warmup = min(steps_per_epoch, 50)
    step = state.get("step", 0)
    labels = torch.from_numpy(train["labels"])
    levels = torch.from_numpy(train["levels"])
    parts, started = [], time.perf_counter()
    while step < total:
        epoch = step // steps_per_epoch
        batches = list(ladder_batches(train["content"], args.contents_per_batch, epoch, args.seed))
        images = sample_rungs(train, batches[step % steps_per_epoch], args, step)
        model.train()
        for group in optimiser.param_groups:
            group["lr"] = _lr(step, total, warmup, args.top_lr)
        rows, index = patch_rows(
            train["start"], train["content"], images, args.patches_per_step, step, args.seed
        )
        y, alpha = model(_as_input(train["patches"][rows]))
        q = pool_images(y, alpha, index, len(images))
        loss, part = step_loss(args, q, train, images, labels, levels)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        parts.append(part)
        step += 1
        if step % args.eval_every == 0 or step == total:
            report = validation_report(_full_scores(model, val), val)
            seconds = time.perf_counter() - started
            record = {
                "stage": "full",
                "step": step,
                "patch_steps": step * len(rows),
                "seconds": round(seconds, 1),
                "l1": float(np.mean([p["l1"] for p in parts])),
                "rank": float(np.mean([p["rank"] for p in parts])),
                **report,
            }
            print(json.dumps(record), flush=True)
            state.setdefault("history", []).append(record)
            if report["objective"] > state.get("best_objective", -math.inf):
                state["best_objective"] = report["objective"]
                state["best"] = {k: v.clone() for k, v in model.state_dict().items()}
                state["best_record"] = record
            state.update(
                step=step,
                model=model.state_dict(),
                optimiser=optimiser.state_dict(),
            )
            _add_compute(args.work, "full", seconds, torch.get_num_threads())
            _save_state(args.work, state)
            parts, started = [], time.perf_counter()


# --- stage 3: finish ----------------------------------------------------------------------------
def calibration_levels(scores: np.ndarray, val: dict) -> dict[int, list[float]]:
    """Raw validation scores by level for ``fit_calibration``: 0 the clean photos, 1-5 every
    KADID type (the scale is defined on KADID's levels; the media types and the JPEG ladder are
    validation measures only)."""
    kadid = np.isin(val["kinds"], [k for k in ALL_DISTORTIONS if k not in MEDIA])
    by_level = {0: list(scores[val["levels"] == 0])}
    for level in range(1, 6):
        by_level[level] = list(scores[kadid & (val["levels"] == level)])
    return by_level


def finish(args) -> dict:
    """The best validation epoch, calibrated on the validation photos, written with its card
    figures (what it was chosen on, the compute it took) as ``OUT/wadiqam-nr.safetensors``."""
    state = torch.load(args.work / "fit-state.pt", weights_only=True)
    model, meta = initial_model(args.init, args.trunk_from)
    model.load_state_dict(state["best"])
    model.calibration = None
    if args.keep_patches:
        val = _load_patches(args.work / "val")
        raw = _full_scores(model, val)
    else:
        val = _load(args.work / "val", torch.float32)
        raw = _image_scores(Top(model), val, None)
    calibration = fit_calibration(calibration_levels(raw, val))
    compute = json.loads((args.work / "compute.json").read_text())
    record = state["best_record"]
    meta.calibration = calibration.to_dict()
    meta.score_name = (
        f"quality, 0-100 ({calibration.version}: clean photos ~90, each KADID level ~15 lower;"
        f" trained on the {args.label} label with a ladder ranking loss)"
    )
    meta.score_range = [0.0, 100.0]
    meta.version = args.version
    meta.training_data = (
        f"synthetic-{args.label}: {len(_load_names(args.work / 'train'))} ladders (training "
        f"photos x {args.crops} crops, 12 media/key types + {args.others} drawn KADID types x 5 "
        f"levels), split by photo; fine-tuned "
        + ("every conv" if args.keep_patches else "convs 9-10")
        + f" and the heads from {args.init_name or args.init.name}"
    )
    meta.metrics = {
        "val_objective": round(record["objective"], 4),
        "val_srocc": round(record["srocc"], 4),
        "val_jpeg_ladder_monotone": record["jpeg_ladder_monotone_share"],
        "val_clean_above_level1": round(record["clean_above_level1_share"], 4),
        "cpu_hours": round(args.compute_before + sum(compute.values()), 3),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    save_weights(model, args.out / "wadiqam-nr.safetensors", meta, half=True)
    report = {
        "best": record,
        "baseline": state["baseline"],
        "compute_cpu_hours": compute,
        "calibration": meta.calibration,
        "history": state.get("history", []),
    }
    (args.out / "training-report.json").write_text(json.dumps(report, indent=2))
    print(json.dumps({"wrote": str(args.out / "wadiqam-nr.safetensors"), **meta.metrics}))
    return report


def _load_names(folder: Path) -> list[str]:
    return sorted(p.stem for p in folder.glob("*.npz"))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--photos",
        type=Path,
        action="append",
        required=True,
        help="a folder of photos (gather_photos.py's photos/)",
    )
    parser.add_argument(
        "--work",
        type=Path,
        default=Path("build/nr"),
        help="where every stage keeps its results (resumable)",
    )
    parser.add_argument("--out", type=Path, help="final weights folder (default WORK/out)")
    parser.add_argument(
        "--stages",
        nargs="+",
        default=["prepare", "fit", "finish"],
        choices=["prepare", "fit", "full", "finish"],
    )
    parser.add_argument(
        "--init",
        type=Path,
        default=default_weights(False),
        help="the weights to start from (default: the shipped NR default)",
    )
    parser.add_argument(
        "--trunk-from",
        type=Path,
        help="take convs 1-8 from these weights (e.g. the FR default's) instead of --init's",
    )
    parser.add_argument(
        "--keep-patches",
        action="store_true",
        help="prepare keeps pixels (for the 'full' stage: every conv trains) instead of "
        "lower-conv outputs",
    )
    parser.add_argument(
        "--eval-every", type=int, default=100, help="'full' stage: steps between validations"
    )
    parser.add_argument("--crops", type=int, default=2, help="contents per training photo")
    parser.add_argument(
        "--others",
        type=int,
        default=3,
        help="KADID types drawn per content beside the always-used ones",
    )
    parser.add_argument("--patches", type=int, default=32, help="grid cells kept per content")
    parser.add_argument("--label", default=WEAK_LABEL_VERSION)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--head-epochs", type=int, default=30)
    parser.add_argument("--head-lr", type=float, default=3e-4)
    parser.add_argument("--top-epochs", type=int, default=4)
    parser.add_argument("--top-lr", type=float, default=1e-4)
    parser.add_argument("--contents-per-batch", type=int, default=2)
    parser.add_argument(
        "--patches-per-step",
        type=int,
        default=16,
        help="of each image's kept patches, per step (the same cells on a ladder)",
    )
    parser.add_argument(
        "--margin",
        type=float,
        default=2.0,
        help="ranking margin per level step, on the label's 0-100 scale",
    )
    parser.add_argument("--rank-weight", type=float, default=1.0)
    parser.add_argument(
        "--l1-weight",
        type=float,
        default=1.0,
        help="0: the ladder ranking alone (the label's offsets dominate the L1)",
    )
    parser.add_argument(
        "--pristine-weight",
        type=float,
        default=4.0,
        help="L1 weight of pristine images (1 in ~76 rows otherwise)",
    )
    parser.add_argument(
        "--reinit-top",
        action="store_true",
        help="start convs 9-10 and the heads afresh (not from --init's)",
    )
    parser.add_argument(
        "--dropout", type=float, default=0.5, help="the heads' dropout while training"
    )
    parser.add_argument(
        "--kinds-per-step",
        type=int,
        default=0,
        help="'full' stage: per content and step, the pristine rung and this many kinds' levels "
        "(0: the whole ladder)",
    )
    parser.add_argument(
        "--kind-weight",
        type=_kind_weights,
        default={},
        help="'full' stage with --kinds-per-step: how often each kind is drawn, e.g. "
        "jpeg_quality=3,double_jpeg=3 (others 1)",
    )
    parser.add_argument(
        "--init-name",
        help="what --init is, for the weights' training_data (default: its file name), e.g. "
        "'NR 0.3.0 in two earlier stages (...)' when it is a build-local intermediate",
    )
    parser.add_argument(
        "--compute-before",
        type=float,
        default=0.0,
        help="CPU-hours already spent on --init's lineage (added to the card's cpu_hours)",
    )
    parser.add_argument("--resume", action="store_true", help="go on from WORK/fit-state.pt")
    parser.add_argument("--version", default="0.4.0", help="the new weights' version")
    args = parser.parse_args()
    args.out = args.out or args.work / "out"
    args.work.mkdir(parents=True, exist_ok=True)
    if "prepare" in args.stages:
        prepare(args)
    if "fit" in args.stages:
        torch.set_num_threads(args.workers)
        fit(args)
    if "full" in args.stages:
        torch.set_num_threads(args.workers)
        fit_full(args)
    if "finish" in args.stages:
        finish(args)


if __name__ == "__main__":
    main()
