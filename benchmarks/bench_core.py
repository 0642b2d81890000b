"""Throughput of deepiqa_core, run by hand (never a timed test).

For NR and FR at 512x384 and 1920x1080 (full grid, stride 32) it reports, in one run:

* matmul: the machine's fp32 (or autocast dtype) 2048^3 matrix-product GFLOP/s;
* network: images/s of the network alone on pre-cut patches (conv stack + heads, the scorer's
  batching), and the conv stack's achieved GFLOP/s (2 x 66.9 MMAC per patch; FR counts the
  reference pass too), as a fraction of the matmul figure;
* end-to-end: images/s from JPEG bytes (decode -> patches -> network -> pooling), and its ratio
  to the network-only figure.

    python benchmarks/bench_core.py                      # CPU
    python benchmarks/bench_core.py --device cuda --dtype bfloat16 --compare-fp32

Targets (issue 2): end-to-end >= 0.8 x network-only; network >= 0.7 x matmul (CPU).
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from deepiqa_core import DeepIQA, Scorer, decode_image, grid_for  # noqa: E402
from deepiqa_core.imaging import decode_in_order, default_decode_workers  # noqa: E402
from deepiqa_core.models import CONV_CHANNELS, PATCH_SIZE  # noqa: E402
from deepiqa_core.patches import cut_grid  # noqa: E402


def conv_macs_per_patch() -> int:
    """Multiply-adds of the ten 3x3 convs for one 32x32 patch (66,945,024 ~ the paper's 66.9 M)."""
    side, c_in, total = PATCH_SIZE, 3, 0
    for i, c_out in enumerate(CONV_CHANNELS):
        total += side * side * c_out * c_in * 9
        c_in = c_out
        if i % 2 == 1:
            side //= 2
    return total


CONV_MACS_PER_PATCH = conv_macs_per_patch()
SIZES = {"512x384": (384, 512), "1920x1080": (1080, 1920)}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, device: torch.device, min_seconds: float) -> float:
    """Seconds per call: one warm-up, then repeat until min_seconds have passed."""
    fn()
    _sync(device)
    calls, start = 0, time.perf_counter()
    while True:
        fn()
        calls += 1
        _sync(device)
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return elapsed / calls


def matmul_gflops(device: torch.device, dtype: torch.dtype, min_seconds: float) -> float:
    n = 2048 if device.type == "cpu" else 8192
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    return 2 * n**3 / _timed(lambda: a @ b, device, min_seconds) / 1e9


def synthetic_jpeg(height: int, width: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack([128 + 90 * np.sin(xx / (9 + c) + yy / (13 + c) + seed) for c in range(3)], -1)
    pixels = np.clip(base + rng.normal(0, 15, base.shape), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _score_group(scorer: Scorer, group: list) -> None:
    if scorer.full_reference:
        scorer.score([d for d, _ in group], [r for _, r in group])
    else:
        scorer.score(group)


def bench_case(
    scorer: Scorer,
    size: tuple[int, int],
    n_images: int,
    min_seconds: float,
    decode_workers: int,
) -> dict[str, float]:
    fr = scorer.full_reference
    h, w = size
    blobs = [synthetic_jpeg(h, w, seed) for seed in range(n_images)]
    ref_blobs = [synthetic_jpeg(h, w, 1000 + seed) for seed in range(n_images)] if fr else None
    grid = grid_for(h, w, scorer.stride)
    device = scorer.device

    # Network only: the same patches, already cut and on the device, in budget-sized batches.
    images = [torch.from_numpy(decode_image(b)).to(device) for b in blobs]
    refs = [torch.from_numpy(decode_image(b)).to(device) for b in ref_blobs] if fr else None
    patches = torch.cat([cut_grid(im, grid, 0, grid.rows) for im in images])
    ref_patches = torch.cat([cut_grid(r, grid, 0, grid.rows) for r in refs]) if fr else None
    budget = scorer.patch_budget

    @torch.inference_mode()
    def network() -> None:
        with scorer._autocast():
            for start in range(0, len(patches), budget):
                f_d = scorer._extract(patches[start : start + budget])
                f_r = scorer._extract(ref_patches[start : start + budget]) if fr else None
                scorer._heads(f_d, f_r)

    @torch.inference_mode()
    def conv_only() -> None:
        with scorer._autocast():
            for start in range(0, len(patches), budget):
                scorer._extract(patches[start : start + budget])

    def end_to_end() -> None:
        """What the CLI does: threads decode ahead; budget-sized groups of images are scored."""
        pairs = list(zip(blobs, ref_blobs or [None] * n_images, strict=True))
        load = (
            (lambda p: (decode_image(p[0]), decode_image(p[1])))
            if fr
            else (lambda p: decode_image(p[0]))
        )
        group: list = []
        for _, decoded in decode_in_order(pairs, load, decode_workers):
            group.append(decoded)
            if len(group) * grid.count >= budget:
                _score_group(scorer, group)
                group = []
        if group:
            _score_group(scorer, group)

    t_net = _timed(network, device, min_seconds)
    t_conv = _timed(conv_only, device, min_seconds)
    t_e2e = _timed(end_to_end, device, min_seconds)
    n_patches = len(patches)
    return {
        "images": n_images,
        "patches_per_image": grid.count,
        "network_img_s": n_images / t_net,
        "end_to_end_img_s": n_images / t_e2e,
        "end_to_end_over_network": t_net / t_e2e,
        "conv_gflops": 2 * CONV_MACS_PER_PATCH * n_patches / t_conv / 1e9,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], default="float32")
    parser.add_argument(
        "--compare-fp32",
        action="store_true",
        help="also report the score difference of --dtype against fp32",
    )
    parser.add_argument("--images-small", type=int, default=16, help="images at 512x384")
    parser.add_argument("--images-large", type=int, default=3, help="images at 1920x1080")
    parser.add_argument("--patch-budget", type=int, default=1024)
    parser.add_argument("--decode-workers", type=int, default=default_decode_workers())
    parser.add_argument("--min-seconds", type=float, default=3.0, help="time per measurement")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()

    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype)
    autocast = None if dtype == torch.float32 else dtype
    torch.manual_seed(0)
    results: dict[str, object] = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "threads": torch.get_num_threads(),
        "decode_workers": args.decode_workers,
        "dtype": args.dtype,
        "torch": torch.__version__,
        "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,  # fp32 convs may run as TF32 on GPU
        "matmul_gflops": matmul_gflops(device, dtype, args.min_seconds),
    }
    print(json.dumps({k: v for k, v in results.items()}), flush=True)
    for variant in ("wadiqam-nr", "wadiqam-fr"):
        model = DeepIQA(variant)
        scorer = Scorer(
            model, device=device, patch_budget=args.patch_budget, autocast_dtype=autocast
        )
        for label, size in SIZES.items():
            n = args.images_small if label == "512x384" else args.images_large
            case = bench_case(scorer, size, n, args.min_seconds, args.decode_workers)
            case["conv_over_matmul"] = case["conv_gflops"] / results["matmul_gflops"]
            if args.compare_fp32 and autocast is not None:
                image = decode_image(synthetic_jpeg(*size, seed=7))
                ref = decode_image(synthetic_jpeg(*size, seed=8)) if scorer.full_reference else None
                fp32 = Scorer(model, device=device).score_one(image, ref).score
                case["abs_score_diff_vs_fp32"] = abs(scorer.score_one(image, ref).score - fp32)
            results[f"{variant}@{label}"] = case
            print(json.dumps({f"{variant}@{label}": case}), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
