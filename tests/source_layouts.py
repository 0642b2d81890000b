"""Writers and reference forward passes for the published weight layouts, written from their
documented conventions (key names, fusion order, input range, epsilon), independent of
deepiqa_core's importers, so that a converted model can be checked against its source."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

CHANNELS = (32, 32, 64, 64, 128, 128, 256, 256, 512, 512)
PYIQA_CONV_INDEX = (0, 2, 5, 7, 10, 12, 15, 17, 20, 22)


def _conv_shapes() -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    shapes, cin = [], 3
    for c in CHANNELS:
        shapes.append(((c, cin, 3, 3), (c,)))
        cin = c
    return shapes


def _random(shape: tuple[int, ...], rng: np.random.Generator, fan_in: int) -> np.ndarray:
    return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)


def layer_names(layout: str, fr: bool) -> dict[str, str]:
    """Logical layer -> the layout's layer name."""
    names = {f"conv{i}": f"conv{i}" for i in range(1, 11)}
    if layout == "chainer":
        names |= {"q1": "fc1", "q2": "fc2", "w1": "fc1_a", "w2": "fc2_a"}
    elif layout == "lidq92":
        names |= (
            {"q1": "fc1_q", "q2": "fc2_q", "w1": "fc1_w", "w2": "fc2_w"}
            if fr
            else {"q1": "fc1q_nr", "q2": "fc2q_nr", "w1": "fc1w_nr", "w2": "fc2w_nr"}
        )
    else:  # pyiqa
        names = {f"conv{i}": f"features.{PYIQA_CONV_INDEX[i - 1]}" for i in range(1, 11)}
        names |= {"q1": "fc_q.0", "q2": "fc_q.3", "w1": "fc_w.0", "w2": "fc_w.3"}
    return names


def param_key(layout: str, layer: str, param: str) -> str:
    if layout == "chainer":
        return f"{layer}/{'W' if param == 'weight' else 'b'}"
    return f"{layer}.{param}"


def make_source_params(
    layout: str, fr: bool, weight_head: bool, seed: int = 0
) -> dict[str, np.ndarray]:
    """Random tensors with the layout's exact key names and shapes."""
    rng = np.random.default_rng(seed)
    names = layer_names(layout, fr)
    out: dict[str, np.ndarray] = {}
    for i, (wshape, bshape) in enumerate(_conv_shapes(), start=1):
        w = _random(wshape, rng, int(np.prod(wshape[1:])))
        if layout == "chainer" and i == 1:
            w = w / 255.0  # trained for 0..255 input
        out[param_key(layout, names[f"conv{i}"], "weight")] = w
        out[param_key(layout, names[f"conv{i}"], "bias")] = rng.standard_normal(bshape) * 0.05
    d = 1536 if fr else 512
    heads = ["q"] + (["w"] if weight_head else [])
    for h in heads:
        out[param_key(layout, names[f"{h}1"], "weight")] = _random((512, d), rng, d)
        out[param_key(layout, names[f"{h}1"], "bias")] = rng.standard_normal(512) * 0.05
        out[param_key(layout, names[f"{h}2"], "weight")] = _random((1, 512), rng, 512) * 10
        out[param_key(layout, names[f"{h}2"], "bias")] = np.array([0.3 if h == "w" else 40.0])
    return {k: np.asarray(v, dtype=np.float32) for k, v in out.items()}


def write_source_file(layout: str, params: dict[str, np.ndarray], path: Path) -> None:
    if layout == "chainer":
        import h5py

        with h5py.File(path, "w") as f:  # Chainer's save_hdf5: one group per link
            for key, value in params.items():
                f.create_dataset(key, data=value)
        return
    state = {k: torch.from_numpy(v.copy()) for k, v in params.items()}
    torch.save({"params": state} if layout == "pyiqa" else state, path)


def source_forward(
    layout: str,
    params: dict[str, np.ndarray],
    fr: bool,
    weighted: bool,
    distorted01: torch.Tensor,
    reference01: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per-image score as the source network computes it, for a batch of one image's patches."""
    names = layer_names(layout, fr)

    def p(layer: str, param: str) -> torch.Tensor:
        return torch.from_numpy(params[param_key(layout, names[layer], param)])

    scale = 255.0 if layout == "chainer" else 1.0

    def features(x: torch.Tensor) -> torch.Tensor:
        h = x * scale
        for i in range(1, 11):
            h = F.relu(F.conv2d(h, p(f"conv{i}", "weight"), p(f"conv{i}", "bias"), padding=1))
            if i % 2 == 0:
                h = F.max_pool2d(h, 2)
        return h.flatten(1)

    f_d = features(distorted01)
    if fr:
        f_r = features(reference01)
        if layout == "pyiqa":
            h = torch.cat([f_r, f_d, f_d - f_r], 1)
        else:
            h = torch.cat([f_d - f_r, f_d, f_r], 1)
    else:
        h = f_d

    def head(prefix: str) -> torch.Tensor:
        z = F.relu(F.linear(h, p(f"{prefix}1", "weight"), p(f"{prefix}1", "bias")))
        return F.linear(z, p(f"{prefix}2", "weight"), p(f"{prefix}2", "bias")).squeeze(1)

    y = head("q")
    if not weighted:
        return y.mean()
    eps = 1e-8 if layout == "pyiqa" else 1e-6
    alpha = F.relu(head("w")) + eps
    return (alpha * y).sum() / alpha.sum()
