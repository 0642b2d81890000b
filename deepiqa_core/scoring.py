"""Batched image scoring: patches of many images in one forward pass, pooled per image.

Why batch across images: the network costs ~67 MMAC per patch and wants large batches, but one
small image has few patches. ``Scorer.score`` cuts the full grid of every image, packs the patches
of several images into forward passes of at most ``patch_budget`` patches (a huge image is split
over several passes, so memory stays bounded) and pools each image's patch outputs afterwards in
float64, so an image's score does not depend on what else was in the batch.

Full reference: each distinct reference is run through the conv stack once per call, however many
distorted images share it (pass the same array object, or precompute ``reference_features`` and
pass that object to reuse it across calls).

Precision (``precision``; ``devices.resolve_precision`` turns ``auto`` into one of these):

* ``fp32``: IEEE float32 everywhere, the reference mode. On CPU the conv stack runs through
  oneDNN (``torch.utils.mkldnn``); on GPUs cuDNN's TF32 is switched off for the call.
* ``bf16`` on CPU: the conv stack in bfloat16 through oneDNN (AVX512-BF16 / AMX kernels), the
  heads and pooling in float32. Measured on an AVX512-BF16 CPU: ~2x the fp32 patches/s, scores
  within 0.5 of fp32 on a 0-100 scale (tests/test_precision.py holds the bound).
* ``bf16`` on GPUs: autocast, channels_last convs.

Batch independence: on CPU the heads run on fixed ``HEAD_CHUNK``-row pieces, so every patch's
outputs are bitwise independent of the rest of the batch. On GPUs a launch per 128 rows made the
scorer launch-bound (measured on an H200: 1,152 head launches per 3 x 64 images), and cuDNN
picks conv algorithms by batch size (bf16 scores moved by up to 0.25 with batch composition), so
each forward pass -- convs and heads -- runs once on the batch zero-padded to a power-of-two
bucket (``bucket_rows``): a few fixed shapes, hence the same kernels and per-row sums whatever
else is in the batch (``bucketed``).
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

from .devices import cpu_runs_onednn_bf16, resolve_device, resolve_precision
from .errors import ImageTooSmallError, SizeMismatchError
from .models import PATCH_SIZE, DeepIQA
from .patches import Grid, cut_grid, grid_for
from .pooling import pool

DEFAULT_PATCH_BUDGET = 1024
# The heads run on fixed-size, zero-padded chunks: a GEMM's rounding depends on its row count, and
# a fixed shape makes every patch's y/alpha bitwise independent of what else is in the batch.
HEAD_CHUNK = 128
# The CPU conv stack runs a forward pass in pieces of this many patches: their activations stay
# in the caches (measured on a 2-core AVX512-BF16 CPU, alternating runs: ~1.2x the patches/s of
# whole 1024-patch batches in fp32 and in bf16; 32 was slower again).
CPU_CONV_ROWS = 128
ImageLike = np.ndarray | torch.Tensor


@dataclass
class PatchMap:
    """Per-patch outputs of one image, grid (row-major) order: local quality y, weight alpha."""

    grid: Grid
    quality: np.ndarray
    weight: np.ndarray

    def positions(self) -> tuple[np.ndarray, np.ndarray]:
        return self.grid.positions()


@dataclass
class ImageScore:
    score: float
    num_patches: int
    patches: PatchMap | None = None


@dataclass
class ReferenceFeatures:
    """Conv features of one reference image's full grid, kept on the scorer's device."""

    height: int
    width: int
    grid: Grid
    features: torch.Tensor


@dataclass(frozen=True)
class _Unit:
    """A contiguous run [start, stop) of one image's row-major patches, as a grid rectangle."""

    image: int
    start: int
    stop: int
    rows: tuple[int, int]
    cols: tuple[int, int]


def bucket_rows(n: int) -> int:
    """The fixed row count a GPU forward pass of ``n`` rows runs as: a power of two, >= 128."""
    return max(HEAD_CHUNK, 1 << (n - 1).bit_length())


def heads_in_pieces(
    model: DeepIQA, f_d: torch.Tensor, f_r: torch.Tensor | None, rows: int
) -> torch.Tensor:
    """(y, alpha) of every row as an (N, 2) float tensor, the heads run on zero-padded pieces of
    exactly ``rows`` rows: a fixed shape gives each row the same sums whatever its neighbours."""
    n = len(f_d)
    pad = (-n) % rows
    if pad:
        f_d = torch.cat([f_d, f_d.new_zeros(pad, f_d.shape[1])])
        f_r = None if f_r is None else torch.cat([f_r, f_r.new_zeros(pad, f_r.shape[1])])
    pieces = []
    for start in range(0, n + pad, rows):
        stop = start + rows
        y, alpha = model.heads(f_d[start:stop], None if f_r is None else f_r[start:stop])
        pieces.append(torch.stack([y, alpha], dim=1))
    return torch.cat(pieces)[:n].float()


def _units(image: int, grid: Grid, budget: int) -> Iterator[_Unit]:
    if grid.cols <= budget:
        band = max(1, budget // grid.cols)
        for r0 in range(0, grid.rows, band):
            r1 = min(grid.rows, r0 + band)
            yield _Unit(image, r0 * grid.cols, r1 * grid.cols, (r0, r1), (0, grid.cols))
    else:
        for r in range(grid.rows):
            for c0 in range(0, grid.cols, budget):
                c1 = min(grid.cols, c0 + budget)
                yield _Unit(image, r * grid.cols + c0, r * grid.cols + c1, (r, r + 1), (c0, c1))


class Scorer:
    """Scores images with one DeepIQA model; see the module docstring for how work is batched."""

    def __init__(
        self,
        model: DeepIQA,
        *,
        device: str | torch.device | None = None,
        stride: int = PATCH_SIZE,
        patch_budget: int = DEFAULT_PATCH_BUDGET,
        precision: str = "fp32",
        onednn: bool = True,
    ) -> None:
        if patch_budget < 1:
            raise ValueError("patch_budget must be >= 1")
        self.device = resolve_device(device)
        self.precision = resolve_precision(precision, self.device)
        self.model = model.to(self.device).eval()  # eval: dropout off, scores are deterministic
        self.stride = stride
        self.patch_budget = patch_budget
        dtype = torch.bfloat16 if self.precision == "bf16" else torch.float32
        use_onednn = (
            onednn
            and self.device.type == "cpu"
            and torch.backends.mkldnn.is_available()
            and (dtype == torch.float32 or cpu_runs_onednn_bf16())
        )
        # autocast only where no dedicated path runs the reduced precision
        self.autocast_dtype = dtype if dtype != torch.float32 and not use_onednn else None
        # GPUs: fixed bucket shapes instead of CPU's fixed chunks (module docstring)
        self.bucketed = self.device.type == "cuda"
        if self.device.type == "cuda":
            self.model.features.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # torch's stubs omit memory_format
        self._extract = self._onednn_extractor(dtype) if use_onednn else self._extract_eager

    def _onednn_extractor(self, dtype: torch.dtype) -> Callable[[torch.Tensor], torch.Tensor]:
        """The CPU conv stack in oneDNN's blocked layout (``torch.utils.mkldnn``), in ``dtype``.

        fp32: the same numbers as eager mode, measured ~1.5x faster; bf16: oneDNN's native
        bf16 kernels, ~2x fp32 again on AVX512-BF16 (benchmarks/bench_core.py). Runs in
        ``CPU_CONV_ROWS`` pieces; features come back as float32. It works on a snapshot of the
        weights taken now. (Measured and not taken: conv+ReLU fused through
        ``mkldnn._convolution_pointwise`` with prepacked weights, and ``torch.compile`` with
        freezing, were no faster than this path here.)
        """
        with warnings.catch_warnings():  # its modules use torch.jit.script_method (deprecated)
            warnings.simplefilter("ignore", DeprecationWarning)
            from torch.utils import mkldnn

            features = mkldnn.to_mkldnn(copy.deepcopy(self.model.features), dtype)

        def extract(patches: torch.Tensor) -> torch.Tensor:
            pieces = patches.split(CPU_CONV_ROWS)
            out = [features(p.to(dtype).to_mkldnn()).to_dense() for p in pieces]
            return torch.cat(out).float().flatten(1)

        return extract

    @property
    def full_reference(self) -> bool:
        return self.model.full_reference

    @property
    def compute(self) -> str:
        """Where and how it runs, e.g. ``cpu/bf16``: what run summaries report per model load."""
        return f"{self.device.type}/{self.precision}"

    def _extract_eager(self, patches: torch.Tensor) -> torch.Tensor:
        """The conv stack in eager mode: GPUs (bucketed, channels_last) and CPUs without oneDNN."""
        n = len(patches)
        if self.bucketed:
            pad = bucket_rows(n) - n
            if pad:
                patches = torch.cat([patches, patches.new_zeros(pad, *patches.shape[1:])])
            patches = patches.contiguous(memory_format=torch.channels_last)
            return self.model.extract(patches)[:n]
        # Eager CPU convolution picks another algorithm for a batch of one (measured: ~1e-6
        # drift); padding to two keeps single-patch batches on the common path.
        if n == 1:
            return self.model.extract(patches.expand(2, -1, -1, -1))[:1]
        return self.model.extract(patches)

    def _tensor(self, image: ImageLike) -> torch.Tensor:
        if isinstance(image, np.ndarray):
            # torch warns on read-only arrays (e.g. straight from Pillow); copy those only
            usable = image.flags.writeable and image.flags.c_contiguous
            t = torch.from_numpy(image if usable else np.array(image, order="C"))
        else:
            t = image
        if t.dtype != torch.uint8 or t.ndim != 3 or t.shape[2] != 3:
            raise ValueError(
                f"expected an (H, W, 3) uint8 RGB image, got {tuple(t.shape)} {t.dtype}"
            )
        if min(t.shape[0], t.shape[1]) < PATCH_SIZE:
            raise ImageTooSmallError(f"{t.shape[1]}x{t.shape[0]} is smaller than one patch")
        if self.device.type == "cuda":  # pinned: the copy runs beside the host's next work
            t = t.pin_memory()
        return t.to(self.device, non_blocking=True)

    def _run(
        self,
        images: Sequence[torch.Tensor],
        grids: Sequence[Grid],
        compute: Callable[[torch.Tensor, list[_Unit]], torch.Tensor],
    ) -> list[torch.Tensor]:
        """Run ``compute`` over every grid patch in budget-sized batches; per-image outputs."""
        outputs: list[torch.Tensor | None] = [None] * len(images)
        batch: list[_Unit] = []
        size = 0

        def flush() -> None:
            patches = torch.cat(
                [cut_grid(images[u.image], grids[u.image], *u.rows, *u.cols) for u in batch]
            )
            result = compute(patches, batch)
            offset = 0
            for u in batch:
                out = outputs[u.image]
                if out is None:
                    out = result.new_empty((grids[u.image].count, result.shape[1]))
                    outputs[u.image] = out
                out[u.start : u.stop] = result[offset : offset + u.stop - u.start]
                offset += u.stop - u.start

        for i, grid in enumerate(grids):
            for unit in _units(i, grid, self.patch_budget):
                n = unit.stop - unit.start
                if batch and size + n > self.patch_budget:
                    flush()
                    batch, size = [], 0
                batch.append(unit)
                size += n
        if batch:
            flush()
        return [o for o in outputs if o is not None]

    def _heads(self, f_d: torch.Tensor, f_r: torch.Tensor | None) -> torch.Tensor:
        """(y, alpha) as an (N, 2) float tensor; piece sizes by device (see the module)."""
        rows = bucket_rows(len(f_d)) if self.bucketed else HEAD_CHUNK
        return heads_in_pieces(self.model, f_d, f_r, rows)

    @contextmanager
    def _autocast(self) -> Iterator[None]:
        """Autocast to ``autocast_dtype`` (bf16 without a dedicated path), else as built.

        cuDNN runs fp32 convolutions as TF32 by default; measured on an H200 that moved scores
        on a 0-100 scale by up to 0.1 and made them depend on batch composition, so plain fp32
        switches TF32 off for the duration of the call (bf16 autocast is the fast option).
        """
        with torch.autocast(
            self.device.type,
            dtype=self.autocast_dtype or torch.float32,
            enabled=self.autocast_dtype is not None,
        ):
            if self.device.type != "cuda" or self.autocast_dtype is not None:
                yield
                return
            saved = torch.backends.cudnn.allow_tf32
            torch.backends.cudnn.allow_tf32 = False
            try:
                yield
            finally:
                torch.backends.cudnn.allow_tf32 = saved

    @torch.inference_mode()
    def reference_features(self, reference: ImageLike) -> ReferenceFeatures:
        """Conv features of a reference's full grid, to reuse across many distorted images."""
        return self._reference_features([reference])[0]

    def _reference_features(self, references: Sequence[ImageLike]) -> list[ReferenceFeatures]:
        tensors = [self._tensor(r) for r in references]
        grids = [grid_for(t.shape[0], t.shape[1], self.stride) for t in tensors]
        with self._autocast():
            feats = self._run(tensors, grids, lambda p, _units: self._extract(p).float())
        return [
            ReferenceFeatures(t.shape[0], t.shape[1], g, f)
            for t, g, f in zip(tensors, grids, feats, strict=True)
        ]

    @torch.inference_mode()
    def score(
        self,
        images: Sequence[ImageLike],
        references: Sequence[ImageLike | ReferenceFeatures] | None = None,
        *,
        return_patches: bool = False,
    ) -> list[ImageScore]:
        """Score ``images`` (and, for FR models, their ``references``, aligned by position).

        Raises ``ImageTooSmallError`` / ``SizeMismatchError`` before any compute, so a caller
        that must not fail a whole batch validates items first (the CLI and jobs do).
        """
        tensors = [self._tensor(im) for im in images]
        grids = [grid_for(t.shape[0], t.shape[1], self.stride) for t in tensors]
        ref_feats = self._resolve_references(tensors, references)

        def heads(patches: torch.Tensor, units: list[_Unit]) -> torch.Tensor:
            f_d = self._extract(patches)
            f_r = None
            if ref_feats is not None:
                f_r = torch.cat([ref_feats[u.image].features[u.start : u.stop] for u in units])
                f_r = f_r.to(f_d.dtype)
            return self._heads(f_d, f_r).cpu()  # one copy to the host per forward pass

        with self._autocast():
            outputs = self._run(tensors, grids, heads)
        results = []
        calibrate = self.model.calibration  # raw -> the weights' readable scale (calibration.py)
        for grid, out in zip(grids, outputs, strict=True):
            y, alpha = out.cpu().numpy().T
            score = pool(y, alpha)
            if calibrate is not None:
                score, y = float(calibrate(score)), calibrate(y)
            patch_map = PatchMap(grid, y.copy(), alpha.copy()) if return_patches else None
            results.append(ImageScore(score, grid.count, patch_map))
        return results

    def _resolve_references(
        self,
        tensors: Sequence[torch.Tensor],
        references: Sequence[ImageLike | ReferenceFeatures] | None,
    ) -> list[ReferenceFeatures] | None:
        if not self.full_reference:
            if references is not None:
                raise ValueError("a no-reference model takes no references")
            return None
        if references is None or len(references) != len(tensors):
            raise ValueError("a full-reference model needs one reference per image")
        for t, ref in zip(tensors, references, strict=True):
            size = (ref.height, ref.width) if isinstance(ref, ReferenceFeatures) else ref.shape[:2]
            if (t.shape[0], t.shape[1]) != tuple(size):
                raise SizeMismatchError(
                    f"distorted {t.shape[1]}x{t.shape[0]} vs reference {size[1]}x{size[0]}"
                )
            if isinstance(ref, ReferenceFeatures) and ref.grid.stride != self.stride:
                raise ValueError("reference features were computed with another stride")
        # Distinct reference objects are featurised once, in one batched pass.
        pending: dict[int, ImageLike] = {}
        for ref in references:
            if not isinstance(ref, ReferenceFeatures):
                pending.setdefault(id(ref), ref)
        computed = dict(zip(pending, self._reference_features(list(pending.values())), strict=True))
        return [r if isinstance(r, ReferenceFeatures) else computed[id(r)] for r in references]

    def score_one(
        self,
        image: ImageLike,
        reference: ImageLike | ReferenceFeatures | None = None,
        *,
        return_patches: bool = False,
    ) -> ImageScore:
        refs = None if reference is None else [reference]
        return self.score([image], refs, return_patches=return_patches)[0]
