"""Throughput of deepiqa_core against the hardware and a per-image peer, run by hand (never a
timed test). One run per device reports, side by side:

* machine: the fp32 and bf16 matmul GFLOP/s (the peaks every other figure is read against),
  whether the CPU has native bf16 (AVX512-BF16 / AMX) and what ``--precision auto`` picks;
* decode: JPEG bytes -> RGB arrays, Pillow alone vs the library's decoder (simplejpeg for
  plain JPEGs), on 1 thread and on the decode workers;
* per patch: WaDIQaM-NR at 512x384 on decoded arrays, our ``Scorer`` in each precision against
  a *peer* that scores one image per forward pass the way pyiqa's WaDIQaM does (patches on the
  ``range(0, L - 32, 32)`` grid: 165 at 512x384, eager fp32 NCHW; pyiqa itself needs torchvision,
  which this stack cannot install, so the peer is rebuilt from its documented behaviour), and
  the same peer fed 16 images per forward (how a caller batches pyiqa on a GPU). The rounds
  alternate peers and ours, and each ratio is the median of the per-round ratios, because the
  machine is shared and noisy;
* per case (NR/FR x 512x384/1920x1080 x precision): network-only images/s and patches/s, the
  conv stack alone in patches/s and GFLOP/s (and its share of the matmul peak of its precision),
  end-to-end images/s from JPEG bytes (decode threads ahead of the network), FR with a distinct
  reference per image;
* agreement: max |score(bf16) - score(fp32)| with the shipped default weights over the bundled
  photos and held-out degraded versions of them (heavy JPEG, blur, noise), and with a
  He-initialised network (``gpu_checks.varied_model``: scores spread over tens).

    python benchmarks/bench_core.py --json benchmarks/results/core-cpu.json
    python benchmarks/bench_core.py --device cuda --images-small 256 --images-large 32
"""

from __future__ import annotations

import argparse
import copy
import io
import json
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageFilter

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gpu_checks import varied_model  # noqa: E402

from deepiqa_core import DeepIQA, Scorer, decode_image, grid_for, imaging  # noqa: E402
from deepiqa_core.defaults import SAMPLES, default_weights  # noqa: E402
from deepiqa_core.devices import cpu_has_native_bf16, resolve_precision  # noqa: E402
from deepiqa_core.imaging import decode_in_order, default_decode_workers  # noqa: E402
from deepiqa_core.models import CONV_CHANNELS, PATCH_SIZE  # noqa: E402
from deepiqa_core.patches import cut_grid  # noqa: E402
from deepiqa_core.training.distortions import jpeg_at_quality  # noqa: E402
from deepiqa_core.weights import load_weights  # noqa: E402

SIZES = {"512x384": (384, 512), "1920x1080": (1080, 1920)}
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


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


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn: Callable[[], object], device: torch.device, min_seconds: float) -> float:
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


# --- decode -------------------------------------------------------------------------------------


def bench_decode(workers: int, min_seconds: float) -> dict[str, float]:
    """Images/s of 512x384 q90 JPEGs, per decoder and thread count."""
    blobs = [synthetic_jpeg(384, 512, seed) for seed in range(32)]
    out: dict[str, float] = {}
    fast = imaging.simplejpeg
    for name, module in (("pillow", None), ("library", fast)):
        imaging.simplejpeg = module  # None: decode_image's Pillow path for every JPEG
        try:
            for threads in sorted({1, workers}):
                with ThreadPoolExecutor(threads) as pool:
                    t = _timed(
                        lambda pool=pool: list(pool.map(decode_image, blobs)),
                        torch.device("cpu"),
                        min_seconds,
                    )
                out[f"{name}_{threads}_threads_img_s"] = len(blobs) / t
        finally:
            imaging.simplejpeg = fast
    return out


# --- the per-image peer -------------------------------------------------------------------------


def peer_grid(height: int, width: int) -> list[tuple[int, int]]:
    """pyiqa's patch corners: ``range(0, L - 32, 32)`` on each axis (drops a last full patch)."""
    return [(y, x) for y in range(0, height - 32, 32) for x in range(0, width - 32, 32)]


def peer_scores(model: DeepIQA, images: list[np.ndarray], per_call: int = 1) -> list[float]:
    """Eager fp32 forwards over the peer-grid patches of ``per_call`` images at a time (pyiqa:
    1 image per call; a caller batching pyiqa: 16), weighted-average pooled per image."""
    device = next(model.parameters()).device
    scores = []
    for start in range(0, len(images), per_call):
        cut = []
        for image in images[start : start + per_call]:
            t = torch.from_numpy(image).to(device).permute(2, 0, 1).float().div(255.0)
            corners = peer_grid(t.shape[1], t.shape[2])
            cut.append(torch.stack([t[:, y : y + 32, x : x + 32] for y, x in corners]))
        y, alpha = model(torch.cat(cut))
        sizes = [len(c) for c in cut]
        for yi, ai in zip(y.split(sizes), alpha.split(sizes), strict=True):
            scores.append(float((yi * ai).sum() / ai.sum()))
    return scores


def bench_per_patch(
    device: torch.device, precisions: list[str], n_images: int, rounds: int, min_seconds: float
) -> dict[str, object]:
    """Patches/s of the peers and of our scorer per precision, alternating, and their ratios.
    The peers get their own copy of the model (our scorer changes its memory format on GPUs)
    and the device's defaults (cuDNN's TF32 included, as pyiqa runs)."""
    torch.manual_seed(0)
    model = DeepIQA("wadiqam-nr").to(device).eval()
    peer_model = copy.deepcopy(model)
    images = [decode_image(synthetic_jpeg(384, 512, seed)) for seed in range(n_images)]
    peer_patches = len(peer_grid(384, 512)) * n_images
    our_patches = grid_for(384, 512).count * n_images
    scorers = {p: Scorer(model, device=device, precision=p) for p in precisions}
    peers = {"peer": 1, "peer_16_per_call": 16}
    runs: dict[str, list[float]] = {k: [] for k in [*peers, *precisions]}
    with torch.inference_mode():
        for _ in range(rounds):
            for name, per_call in peers.items():
                run = lambda n=per_call: peer_scores(peer_model, images, n)  # noqa: E731
                t = _timed(run, device, min_seconds)
                runs[name].append(peer_patches / t)
            for p, scorer in scorers.items():
                t = _timed(lambda s=scorer: s.score(images), device, min_seconds)
                runs[p].append(our_patches / t)
    out: dict[str, object] = {
        "images": n_images,
        "peer_patches_per_image": len(peer_grid(384, 512)),
        "our_patches_per_image": grid_for(384, 512).count,
        "rounds": rounds,
        "patches_s": {k: [round(v, 1) for v in vs] for k, vs in runs.items()},
    }
    for p in precisions:
        for name in peers:
            ratios = [ours / peer for ours, peer in zip(runs[p], runs[name], strict=True)]
            out[f"{p}_over_{name}_median"] = statistics.median(ratios)
    return out


# --- per case -----------------------------------------------------------------------------------


def bench_case(
    scorer: Scorer, size: tuple[int, int], n_images: int, min_seconds: float, decode_workers: int
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
        "network_patches_s": n_patches / t_net,
        "conv_patches_s": n_patches / t_conv,
        "conv_gflops": 2 * CONV_MACS_PER_PATCH * n_patches / t_conv / 1e9,
        "end_to_end_img_s": n_images / t_e2e,
        "end_to_end_over_network": t_net / t_e2e,
    }


def _score_group(scorer: Scorer, group: list) -> None:
    if scorer.full_reference:
        scorer.score([d for d, _ in group], [r for _, r in group])
    else:
        scorer.score(group)


# --- agreement ----------------------------------------------------------------------------------


def _held_out(photo: np.ndarray) -> list[np.ndarray]:
    noisy = photo + np.random.default_rng(0).normal(0, 25, photo.shape)
    return [
        jpeg_at_quality(photo, 10),
        np.asarray(Image.fromarray(photo).filter(ImageFilter.GaussianBlur(3))),
        np.clip(noisy, 0, 255).astype(np.uint8),
    ]


def bench_agreement(device: torch.device) -> dict[str, float]:
    """max |bf16 - fp32| per model over the bundled photos and their held-out degradations."""
    photos = [decode_image(p.read_bytes()) for p in sorted((SAMPLES / "nr").iterdir())]
    images = photos + [d for p in photos for d in _held_out(p)]
    refs = photos + [p for p in photos for _ in range(3)]  # FR: each against its own photo
    torch.manual_seed(0)
    models = {
        "default-nr": load_weights(default_weights(False).read_bytes())[0],
        "default-fr": load_weights(default_weights(True).read_bytes())[0],
        "varied-nr": varied_model("wadiqam-nr"),
    }
    out: dict[str, float] = {"images": len(images)}
    for name, model in models.items():
        r = refs if model.full_reference else None
        fp32 = [s.score for s in Scorer(model, device=device).score(images, r)]
        bf16 = [s.score for s in Scorer(model, device=device, precision="bf16").score(images, r)]
        out[f"{name}_max_abs_diff"] = float(np.max(np.abs(np.subtract(bf16, fp32))))
        out[f"{name}_score_range"] = [float(min(fp32)), float(max(fp32))]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precisions", nargs="+", choices=list(DTYPES), default=list(DTYPES))
    parser.add_argument("--images-small", type=int, default=16, help="images at 512x384")
    parser.add_argument("--images-large", type=int, default=2, help="images at 1920x1080")
    parser.add_argument("--rounds", type=int, default=3, help="alternating peer/ours rounds")
    parser.add_argument("--decode-workers", type=int, default=default_decode_workers())
    parser.add_argument("--min-seconds", type=float, default=3.0, help="time per measurement")
    parser.add_argument("--skip-large", action="store_true", help="no 1920x1080 cases")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()

    device = torch.device(args.device)
    results: dict[str, object] = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "cpu_native_bf16": cpu_has_native_bf16(),
        "auto_precision": resolve_precision("auto", device),
        "threads": torch.get_num_threads(),
        "decode_workers": args.decode_workers,
        "torch": torch.__version__,
        "matmul_gflops": {
            p: matmul_gflops(device, DTYPES[p], args.min_seconds) for p in args.precisions
        },
    }

    def report(key: str, value: object) -> None:
        results[key] = value
        print(json.dumps({key: value}), flush=True)

    print(json.dumps(results), flush=True)
    report("decode", bench_decode(args.decode_workers, args.min_seconds))
    report(
        "per_patch_nr_512x384",
        bench_per_patch(device, args.precisions, args.images_small, args.rounds, args.min_seconds),
    )
    sizes = {k: v for k, v in SIZES.items() if not (args.skip_large and k != "512x384")}
    for variant in ("wadiqam-nr", "wadiqam-fr"):
        torch.manual_seed(0)
        model = DeepIQA(variant)
        for precision in args.precisions:
            scorer = Scorer(model, device=device, precision=precision)
            for label, size in sizes.items():
                n = args.images_small if label == "512x384" else args.images_large
                case = bench_case(scorer, size, n, args.min_seconds, args.decode_workers)
                peak = results["matmul_gflops"][precision]  # type: ignore[index]
                case["conv_over_matmul"] = case["conv_gflops"] / peak
                report(f"{variant}@{label}/{precision}", case)
    if "bf16" in args.precisions:
        report("bf16_vs_fp32", bench_agreement(device))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
