"""The paper's training protocol on in-memory (distorted, reference, label) samples.

Per step: ``batch_images`` images, ``patches_per_image`` random 32x32 crops each (the same
positions in the distorted image and its reference), Adam (lr 1e-4, no weight decay), dropout 0.5
active. Loss: L1 between every patch's prediction and its image's label (DIQaM), or between the
weighted image score and the label (WaDIQaM). The model with the best validation SROCC (full-grid
scoring, eval mode) is kept.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from ..evaluation.metrics import plcc, srocc
from ..models import DeepIQA
from ..patches import crop_at, random_positions
from ..scoring import Scorer


@dataclass
class Sample:
    distorted: np.ndarray
    reference: np.ndarray
    label: float
    source: str = ""
    kind: str = ""
    level: int = 0


@dataclass
class TrainConfig:
    steps: int = 1000
    seconds: float | None = None  # stop early when this wall time is spent
    batch_images: int = 4
    patches_per_image: int = 32
    lr: float = 1e-4
    eval_every: int = 100
    seed: int = 0
    device: str = "cpu"
    autocast_dtype: torch.dtype | None = None
    start_at_label_mean: bool = True  # off when continuing from trained weights


@dataclass
class TrainResult:
    model: DeepIQA
    best_val_srocc: float
    best_step: int
    steps_run: int
    seconds: float
    history: list[dict] = field(default_factory=list)


def predict(model: DeepIQA, samples: Sequence[Sample], device: str) -> np.ndarray:
    scorer = Scorer(model, device=device)
    refs = [s.reference for s in samples] if model.full_reference else None
    scores = np.array([r.score for r in scorer.score([s.distorted for s in samples], refs)])
    model.train()
    return scores


def evaluate(model: DeepIQA, samples: Sequence[Sample], device: str) -> dict[str, float]:
    scores = predict(model, samples, device)
    labels = [s.label for s in samples]
    return {"srocc": srocc(scores, labels), "plcc": plcc(scores, labels)}


def train(
    model: DeepIQA,
    train_set: Sequence[Sample],
    val_set: Sequence[Sample],
    config: TrainConfig,
    log: Callable[[dict], None] = print,
) -> TrainResult:
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    device = torch.device(config.device)
    model.to(device).train()
    if config.start_at_label_mean:
        labels_mean = float(np.mean([s.label for s in train_set]))
        with torch.no_grad():  # start at the mean label, not at ~0, so early steps learn ranking
            model.quality[3].bias.fill_(labels_mean)
    optimiser = torch.optim.Adam(model.parameters(), lr=config.lr)
    images = [torch.tensor(s.distorted, device=device) for s in train_set]
    refs = [torch.tensor(s.reference, device=device) for s in train_set]
    labels = torch.tensor([s.label for s in train_set], dtype=torch.float32, device=device)
    k = config.patches_per_image
    best = (-2.0, 0, copy.deepcopy(model.state_dict()))
    history: list[dict] = []
    started = time.perf_counter()
    step = 0
    for step in range(1, config.steps + 1):
        idx = torch.randint(0, len(train_set), (config.batch_images,), generator=gen).tolist()
        d_list, r_list = [], []
        for i in idx:
            h, w = images[i].shape[:2]
            ys, xs = random_positions(h, w, k, gen)
            d_list.append(crop_at(images[i], ys, xs))
            if model.full_reference:
                r_list.append(crop_at(refs[i], ys, xs))
        d = torch.cat(d_list)
        r = torch.cat(r_list) if model.full_reference else None
        target = labels[idx]
        with torch.autocast(
            device.type,
            dtype=config.autocast_dtype or torch.float32,
            enabled=config.autocast_dtype is not None,
        ):
            y, alpha = model(d, r)
        y, alpha = y.float().view(-1, k), alpha.float().view(-1, k)
        if model.variant.weighted:
            pooled = (alpha * y).sum(1) / alpha.sum(1)
            loss = (pooled - target).abs().mean()
        else:
            loss = (y - target[:, None]).abs().mean()
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        elapsed = time.perf_counter() - started
        out_of_time = config.seconds is not None and elapsed >= config.seconds
        if step % config.eval_every == 0 or step == config.steps or out_of_time:
            metrics = evaluate(model, val_set, config.device)
            record = {
                "step": step,
                "loss": loss.item(),
                "seconds": round(elapsed, 1),
                **{f"val_{k_}": v for k_, v in metrics.items()},
            }
            history.append(record)
            log(record)
            if metrics["srocc"] > best[0]:
                best = (metrics["srocc"], step, copy.deepcopy(model.state_dict()))
        if out_of_time:
            break
    model.load_state_dict(best[2])
    model.eval()
    return TrainResult(model, best[0], best[1], step, time.perf_counter() - started, history)
