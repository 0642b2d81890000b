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
from typing import Protocol

import numpy as np
import torch
import torch.distributed as dist

from ..models import DeepIQA
from .checkpoints import latest_checkpoint, load_checkpoint, save_checkpoint

METRICS_LOG = "metrics.jsonl"


@dataclass
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


def _all_reduce(values: list[float], op: dist.ReduceOp, world: int) -> list[float]:
    if world == 1:
        return values
    t = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(t, op=op)
    return t.tolist()


def _to_input(patches: np.ndarray, device: torch.device) -> torch.Tensor:
    t = torch.from_numpy(patches).to(device)
    return t.view(-1, *t.shape[2:]).float().div_(255.0)


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
    """Train ``model`` in place (rank 0's copy ends as the best epoch's weights)."""
    rank, world = _world()
    model.to(device).train()
    if config.initial_bias is not None:
        with torch.no_grad():  # start at the mean label, not ~0, so early steps learn ranking
            model.quality[3].bias.fill_(config.initial_bias)
    optimiser = torch.optim.Adam(model.parameters(), lr=config.lr)
    checkpoints = run_dir / "checkpoints"
    identity = config.identity(world)
    start, best_epoch, best_val, best_state, history = 1, 0, None, None, []
    found = latest_checkpoint(checkpoints) if resume else None
    if found is not None:
        state = load_checkpoint(found)
        saved = json.loads(state["identity"])
        if saved != identity:
            raise ValueError(f"{found} was made with {saved}; this run has {identity}")
        model.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimizer"])
        start, best_epoch = int(state["epoch"]) + 1, int(state["best_epoch"])
        best_val = None if math.isnan(state["best_val_srocc"]) else float(state["best_val_srocc"])
        best_state = state.get("best_model")
        history = json.loads(state["history"])
        if rank == 0:
            log(f"resuming from {found.name}: epoch {start} of {config.epochs}")
    if rank == 0:  # the log holds exactly the epochs the (resumed) run has done
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / METRICS_LOG).write_text("".join(json.dumps(h) + "\n" for h in history))
    net = model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    started = time.perf_counter()
    k = config.patches_per_image
    epoch = start - 1
    for epoch in range(start, config.epochs + 1):
        torch.manual_seed(config.seed * 1_000_003 + epoch * 1009 + rank)  # dropout masks
        model.train()
        batches = source.batches(epoch)
        total, steps, out_of_time = 0.0, 0, False
        progress = _progress(rank, epoch, config.epochs, steps_hint)
        while True:
            batch = next(batches, None)
            out_of_time = (
                config.max_seconds is not None
                and time.perf_counter() - started >= config.max_seconds
            )
            go = _all_reduce(
                [float(batch is not None and not out_of_time)], dist.ReduceOp.MIN, world
            )
            if go[0] == 0:
                break
            d = _to_input(batch.patches, device)
            r = _to_input(batch.ref_patches, device) if batch.ref_patches is not None else None
            target = torch.from_numpy(np.asarray(batch.labels, np.float32)).to(device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=config.bf16):
                y, alpha = net(d, r)
            y, alpha = y.float().view(-1, k), alpha.float().view(-1, k)
            if model.variant.weighted:
                loss = ((alpha * y).sum(1) / alpha.sum(1) - target).abs().mean()
            else:
                loss = (y - target[:, None]).abs().mean()
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            total, steps = total + loss.item(), steps + 1
            progress.update()
        progress.close()
        if hasattr(batches, "close"):
            batches.close()
        # every rank ran the same number of (synchronised) steps; the loss is averaged over all
        total, timed_out = _all_reduce([total, float(out_of_time)], dist.ReduceOp.SUM, world)
        record = {
            "epoch": epoch,
            "steps": steps,
            "images": steps * world * config.batch_images,
            "loss": round(total / (steps * world), 6) if steps else None,
            "seconds": round(time.perf_counter() - started, 2),
        }
        if rank == 0:
            if validate is not None:
                scores = validate(model)
                model.train()
                record.update({f"val_{key}": v for key, v in scores.items()})
                val = scores.get("srocc")
                if val is not None and (best_val is None or val > best_val):
                    best_epoch, best_val = epoch, val
                    best_state = copy.deepcopy(model.state_dict())
            else:
                best_epoch, best_state = epoch, None
            history.append(record)
            with open(run_dir / METRICS_LOG, "a") as f:
                f.write(json.dumps(record) + "\n")
            log(_describe(record, config.epochs, best_epoch, best_val))
            last = epoch == config.epochs or timed_out > 0
            if last or epoch % config.checkpoint_every == 0:
                save_checkpoint(
                    checkpoints,
                    epoch,
                    {
                        "epoch": epoch,
                        "identity": json.dumps(identity),
                        "model": model.state_dict(),
                        "optimizer": optimiser.state_dict(),
                        "best_epoch": best_epoch,
                        "best_val_srocc": float("nan") if best_val is None else best_val,
                        "best_model": best_state,
                        "history": json.dumps(history),
                    },
                )
        if world > 1:
            dist.barrier()
        if timed_out > 0:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return FitResult(model, best_epoch or epoch, best_val, epoch, history)


def _describe(record: dict, epochs: int, best_epoch: int, best_val: float | None) -> str:
    text = f"epoch {record['epoch']}/{epochs}  steps {record['steps']}  loss {record['loss']}"
    if "val_srocc" in record:
        best = "-" if best_val is None else f"{best_val:.4f}"
        text += f"  val SROCC {record['val_srocc']}  PLCC {record.get('val_plcc')}"
        text += f"  best {best} @ {best_epoch}"
    return text + f"  {record['seconds']:.1f} s"


def _progress(rank: int, epoch: int, epochs: int, total: int | None):
    """A step bar on rank 0 when stderr is a terminal (tqdm switches itself off otherwise)."""
    from tqdm import tqdm

    return tqdm(
        total=total,
        desc=f"epoch {epoch}/{epochs}",
        unit="step",
        leave=False,
        disable=True if rank else None,
    )
