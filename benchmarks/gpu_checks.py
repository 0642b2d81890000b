"""GPU correctness checks, run by hand on a CUDA machine next to bench_core.py.

Reports, for a WaDIQaM-NR and -FR network with He-initialised (varied-output) weights:
GPU vs CPU score difference, GPU batch independence (image scored alone vs within a mixed batch)
in fp32, and the same in bf16.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from deepiqa_core import DeepIQA, Scorer  # noqa: E402

SIZES = [(384, 512), (100, 70), (64, 64), (33, 250), (230, 40), (1080, 1920)]


def varied_model(variant: str) -> DeepIQA:
    torch.manual_seed(0)
    model = DeepIQA(variant)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.Conv2d | torch.nn.Linear):
                torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                m.bias.zero_()
        model.quality_output.weight.mul_(100.0)
        model.quality_output.bias.fill_(50.0)
        if model.weight is not None:
            model.weight_output.bias.fill_(1.0)
    return model.eval()


def main() -> None:
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in SIZES]
    refs = [np.clip(im.astype(int) + 30, 0, 255).astype(np.uint8) for im in images]
    report = {}
    for variant in ("wadiqam-nr", "wadiqam-fr"):
        model = varied_model(variant)
        r = refs if model.full_reference else None
        cpu = [s.score for s in Scorer(model, device="cpu").score(images, r)]
        for precision in ("fp32", "bf16"):
            gpu = Scorer(model, device="cuda", precision=precision)
            together = [s.score for s in gpu.score(images, r)]
            alone = [
                gpu.score_one(im, None if r is None else r[i]).score for i, im in enumerate(images)
            ]
            name = f"{variant}/{precision}"
            report[name] = {
                "max_abs_batch_dependence": float(np.max(np.abs(np.subtract(together, alone)))),
                "max_abs_diff_vs_cpu_fp32": float(np.max(np.abs(np.subtract(together, cpu)))),
                "score_range": [float(min(cpu)), float(max(cpu))],
            }
            print(json.dumps({name: report[name]}), flush=True)
    if len(sys.argv) > 1:
        Path(sys.argv[1]).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
