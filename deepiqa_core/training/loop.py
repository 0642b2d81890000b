"""The paper's training loop, one process or many (DDP), with checkpoints and exact resume.

Per step: ``batch_images`` images x ``patches_per_image`` random crops (the same positions in
the distorted image and its reference), Adam (lr 1e-4, no weight decay), dropout 0.5 active.
Loss: L1 between every patch's prediction and its image's label (DIQaM), or between the
weighted image score and the label (WaDIQaM). After every epoch the model is scored on the
validation split (rank 0, full grid, eval mode); the epoch with the best validation SROCC wins.

Reproducibility: crops depend on (seed, epoch, row) only, the shuffle and dropout RNGs are
re-seeded from (seed, epoch, rank) at every epoch, and checkpoints hold model, optimiser, best
model and history; so a run resumed from a checkpoint ends exactly where an uninterrupted run
with the same seed and process count ends (on CPU; GPU kernels may differ in the last bits).

Uneven shards cannot hang DDP: before every step the ranks agree (one all-reduce of a flag)
that all of them still have a batch; the epoch ends for all when any runs out.
"""

from __future__ import annotations

import copy
import json
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
import torch.distributed as dist

from ..errors import UsageError
from ..models import DeepIQA
from ..seeding import derive_seed
from .checkpoints import latest_checkpoint, load_checkpoint, save_checkpoint

METRICS_LOG = "metrics.jsonl"
CHECKPOINTS = "checkpoints"


@dataclass(frozen=True)
class FitConfig:
    epochs: int = 100
    batch_images: int = 4
    patches_per_image: int = 32
    lr: float = 1e-4
    seed: int = 0
    checkpoint_every: int = 1
    max_seconds: float | None = None  # stop (after a validation) once this much time is spent
    bf16: bool = False  # bf16 autocast on GPU
    initial_bias: float | None = None  # start the quality head at the mean training label

    def identity(self, world: int) -> dict:
        """What must not change between a run and its resumption."""
        keep = ("batch_images", "patches_per_image", "lr", "seed", "bf16", "initial_bias")
        return {k: v for k, v in asdict(self).items() if k in keep} | {"processes": world}


@dataclass
class Batch:
    patches: np.ndarray  # (B, k, 3, 32, 32) uint8
    ref_patches: np.ndarray | None  # same, full reference only
    labels: np.ndarray  # (B,) float


class BatchSource(Protocol):
    def batches(self, epoch: int) -> Iterator[Batch]: ...


@dataclass
class FitResult:
    model: DeepIQA
    best_epoch: int
    best_val_srocc: float | None
    epochs_run: int
    history: list[dict] = field(default_factory=list)


def _world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _all_reduce(values: list[float], op: Any, world: int) -> list[float]:
    """``values`` reduced with ``op`` (a ``dist.ReduceOp``) over the ``world`` ranks."""
    if world == 1:
        return values
    t = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(t, op=op)
    return t.tolist()


def _to_input(patches: np.ndarray, device: torch.device) -> torch.Tensor:
    t = torch.from_numpy(patches).to(device)
    return t.view(-1, *t.shape[2:]).float().div_(255.0)


@dataclass
class _Progress:
    """What a checkpoint carries besides the model and optimiser: where to go on from."""

    next_epoch: int = 1
    best_epoch: int = 0
    best_val: float | None = None
    best_state: dict | None = None
    history: list[dict] = field(default_factory=list)
    resumed_from: str | None = None


def _prepare_run(
    model: DeepIQA,
    config: FitConfig,
    device: torch.device,
    run_dir: Path,
    resume: bool,
    log: Callable[[str], None],
    rank: int,
    world: int,
) -> tuple[torch.optim.Optimizer, dict, _Progress]:
    """The model on its device, the optimiser, the run's identity and where it stands (fresh,
    or restored with ``resume``); rank 0 rewrites the metrics log to the epochs done so far."""
    model.to(device).train()
    if config.initial_bias is not None:
        with torch.no_grad():  # start at the mean label, not ~0, so early steps learn ranking
            model.quality_output.bias.fill_(config.initial_bias)
    optimiser = torch.optim.Adam(model.parameters(), lr=config.lr)
    identity = config.identity(world)
    progress = _Progress()
    if resume:
        progress = _resume(run_dir, model, optimiser, identity, progress)
        if rank == 0 and progress.next_epoch > 1:
            where = f"epoch {progress.next_epoch} of {config.epochs}"
            log(f"resuming from {progress.resumed_from}: {where}")
    if rank == 0:  # the log holds exactly the epochs the (resumed) run has done
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / METRICS_LOG).write_text("".join(json.dumps(h) + "\n" for h in progress.history))
    return optimiser, identity, progress


def fit(
    model: DeepIQA,
    source: BatchSource,
    config: FitConfig,
    *,
    device: torch.device,
    run_dir: Path,
    validate: Callable[[DeepIQA], dict] | None = None,
    resume: bool = False,
    log: Callable[[str], None] = print,
    steps_hint: int | None = None,
) -> FitResult:
    """Train ``model`` in place (rank 0's copy ends as the best epoch's weights).

    Exact resume rests on three things, all here: ``_seed_epoch`` re-seeds every random stream
    from (seed, epoch, rank) before each epoch, ``_checkpoint`` saves the model, optimiser and
    ``_Progress`` after it, and ``_resume`` restores all three (refusing another protocol).
    """
    rank, world = _world()
    optimiser, identity, progress = _prepare_run(
        model, config, device, run_dir, resume, log, rank, world
    )
    net = _distributed(model, device, world)
    started = time.perf_counter()
    deadline = None if config.max_seconds is None else started + config.max_seconds
    epoch = progress.next_epoch - 1
    for epoch in range(progress.next_epoch, config.epochs + 1):
        _seed_epoch(config.seed, epoch, rank)
        steps, loss, timed_out = _train_epoch(
            net, model, optimiser, source, config, epoch, device, deadline, steps_hint
        )
        record = {
            "epoch": epoch,
            "steps": steps,
            "images": steps * world * config.batch_images,
            "loss": round(loss, 6) if steps else None,
            "seconds": round(time.perf_counter() - started, 2),
        }
        if rank == 0:
            _end_epoch(record, model, progress, validate)
            with open(run_dir / METRICS_LOG, "a") as f:
                f.write(json.dumps(record) + "\n")
            log(_describe(record, config.epochs, progress.best_epoch, progress.best_val))
            if timed_out or epoch == config.epochs or epoch % config.checkpoint_every == 0:
                _checkpoint(run_dir, epoch, identity, model, optimiser, progress)
        if world > 1:
            dist.barrier()
        if timed_out:
            break
    if progress.best_state is not None:
        model.load_state_dict(progress.best_state)
    model.eval()
    return FitResult(
        model, progress.best_epoch or epoch, progress.best_val, epoch, progress.history
    )


def _seed_epoch(seed: int, epoch: int, rank: int) -> None:
    """Dropout masks; crops and shuffles seed themselves from the same key (patch_sampling,
    petastorm_source), so nothing an epoch draws depends on what ran before it."""
    torch.manual_seed(derive_seed("dropout", seed, epoch, rank))


def _resume(
    run_dir: Path,
    model: DeepIQA,
    optimiser: torch.optim.Optimizer,
    identity: dict,
    fresh: _Progress,
) -> _Progress:
    """Model, optimiser and progress from the latest checkpoint (``fresh`` when there is none)."""
    found = latest_checkpoint(run_dir / CHECKPOINTS)
    if found is None:
        return fresh
    state = load_checkpoint(found)
    saved = json.loads(state["identity"])
    if saved != identity:
        raise UsageError(f"{found} was made with {saved}; this run has {identity}")
    model.load_state_dict(state["model"])
    optimiser.load_state_dict(state["optimizer"])
    progress = _Progress(
        next_epoch=int(state["epoch"]) + 1,
        best_epoch=int(state["best_epoch"]),
        best_val=None if math.isnan(state["best_val_srocc"]) else float(state["best_val_srocc"]),
        best_state=state.get("best_model"),
        history=json.loads(state["history"]),
        resumed_from=found.name,
    )
    return progress


def _distributed(model: DeepIQA, device: torch.device, world: int) -> torch.nn.Module:
    if world == 1:
        return model
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(
        model, device_ids=[device.index] if device.type == "cuda" else None
    )


def _loss(model: DeepIQA, y: torch.Tensor, alpha: torch.Tensor, target: torch.Tensor):
    """L1 on the weighted image score (WaDIQaM) or per patch against its image's label (DIQaM)."""
    if model.variant.weighted:
        return ((alpha * y).sum(1) / alpha.sum(1) - target).abs().mean()
    return (y - target[:, None]).abs().mean()


def _train_epoch(
    net: torch.nn.Module,
    model: DeepIQA,
    optimiser: torch.optim.Optimizer,
    source: BatchSource,
    config: FitConfig,
    epoch: int,
    device: torch.device,
    deadline: float | None,
    steps_hint: int | None,
) -> tuple[int, float, bool]:
    """One pass over this rank's shard: (steps, mean loss over all ranks, out of time)."""
    rank, world = _world()
    model.train()
    batches = source.batches(epoch)
    total, steps, out_of_time = 0.0, 0, False
    bar = _progress_bar(rank, epoch, config.epochs, steps_hint)
    k = config.patches_per_image
    while True:
        batch = next(batches, None)
        out_of_time = deadline is not None and time.perf_counter() >= deadline
        go = _all_reduce([float(batch is not None and not out_of_time)], dist.ReduceOp.MIN, world)
        if go[0] == 0:  # every rank stops together: uneven shards cannot hang DDP
            break
        assert batch is not None  # every rank had one, or all stopped above
        d = _to_input(batch.patches, device)
        r = _to_input(batch.ref_patches, device) if batch.ref_patches is not None else None
        target = torch.from_numpy(np.asarray(batch.labels, np.float32)).to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=config.bf16):
            y, alpha = net(d, r)
        loss = _loss(model, y.float().view(-1, k), alpha.float().view(-1, k), target)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        total, steps = total + loss.item(), steps + 1
        bar.update()
    bar.close()
    if hasattr(batches, "close"):
        batches.close()
    # every rank ran the same number of (synchronised) steps; the loss is averaged over all
    total, timed_out = _all_reduce([total, float(out_of_time)], dist.ReduceOp.SUM, world)
    return steps, total / (steps * world) if steps else 0.0, timed_out > 0


def _end_epoch(
    record: dict,
    model: DeepIQA,
    progress: _Progress,
    validate: Callable[[DeepIQA], dict] | None,
) -> None:
    """Rank 0: validate, keep the best epoch's weights, extend the history."""
    epoch = record["epoch"]
    if validate is not None:
        scores = validate(model)
        model.train()
        record.update({f"val_{key}": v for key, v in scores.items()})
        val = scores.get("srocc")
        if val is not None and (progress.best_val is None or val > progress.best_val):
            progress.best_epoch, progress.best_val = epoch, val
            progress.best_state = copy.deepcopy(model.state_dict())
    else:
        progress.best_epoch, progress.best_state = epoch, None
    progress.history.append(record)


def _checkpoint(
    run_dir: Path,
    epoch: int,
    identity: dict,
    model: DeepIQA,
    optimiser: torch.optim.Optimizer,
    progress: _Progress,
) -> None:
    best = progress.best_val
    save_checkpoint(
        run_dir / CHECKPOINTS,
        epoch,
        {
            "epoch": epoch,
            "identity": json.dumps(identity),
            "model": model.state_dict(),
            "optimizer": optimiser.state_dict(),
            "best_epoch": progress.best_epoch,
            "best_val_srocc": float("nan") if best is None else best,
            "best_model": progress.best_state,
            "history": json.dumps(progress.history),
        },
    )


def _describe(record: dict, epochs: int, best_epoch: int, best_val: float | None) -> str:
    text = f"epoch {record['epoch']}/{epochs}  steps {record['steps']}  loss {record['loss']}"
    if "val_srocc" in record:
        best = "-" if best_val is None else f"{best_val:.4f}"
        text += f"  val SROCC {record['val_srocc']}  PLCC {record.get('val_plcc')}"
        text += f"  best {best} @ {best_epoch}"
    return text + f"  {record['seconds']:.1f} s"


def _progress_bar(rank: int, epoch: int, epochs: int, total: int | None):
    """A step bar on rank 0 when stderr is a terminal (tqdm switches itself off otherwise)."""
    from tqdm import tqdm

    return tqdm(
        total=total,
        desc=f"epoch {epoch}/{epochs}",
        unit="step",
        leave=False,
        disable=True if rank else None,
    )
