"""Importers for the weight layouts people already have.

Each source layout differs from ours in up to four ways, all folded into the converted tensors:

==========  ==========================  ======================  ===========  =======
source      file                        FR fusion order         input range  epsilon
==========  ==========================  ======================  ===========  =======
chainer     authors' HDF5 ``.model``    [f_d - f_r, f_d, f_r]   0..255       1e-6
lidq92      torch state dict (.pth)     [f_d - f_r, f_d, f_r]   0..1         1e-6
pyiqa       ``{'params': state_dict}``  [f_r, f_d, f_d - f_r]   0..1         1e-8
==========  ==========================  ======================  ===========  =======

* Input range 0..255 -> 0..1: conv1's weights are multiplied by 255 (bias unchanged).
* Fusion order: the 1536 input columns of both heads' first Linear are permuted into
  ``[f_d - f_r, f_d, f_r]``.
* Epsilon is kept as the source's value in the metadata, so the converted network matches the
  source network's outputs.

Torch files are read with ``torch.load(weights_only=True)``; nothing is unpickled unsafely.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import WeightsError
from ..models import FEATURE_DIM, DeepIQA, Variant, get_variant
from .format import WeightsMeta

# Index of each conv layer (conv1..conv10) inside our ``features`` Sequential.
CONV_INDEX = (0, 2, 5, 7, 10, 12, 15, 17, 20, 22)
HEAD_LINEAR = {"fc1": "0", "fc2": "3"}


@dataclass(frozen=True)
class SourceLayout:
    """How one published layout names its tensors and what it feeds the network."""

    name: str
    read: Callable[[Path], dict[str, np.ndarray]]
    key_map: Callable[[bool], dict[str, str]]  # full_reference -> {our key: source key}
    fusion_blocks: tuple[int, int, int]  # source block index holding (d-r, d, r)
    input_scale: float  # source input = ours * input_scale
    epsilon: float
    default_direction: str


def _read_hdf5(path: Path) -> dict[str, np.ndarray]:
    try:
        import h5py
    except ImportError as exc:  # pragma: no cover - h5py ships with the hdf5 extra
        raise WeightsError(
            "reading Chainer .model files needs h5py: pip install deepiqa[hdf5]"
        ) from exc
    out: dict[str, np.ndarray] = {}
    try:
        with h5py.File(path, "r") as f:
            f.visititems(
                lambda name, obj: (
                    out.__setitem__(name, np.asarray(obj))
                    if isinstance(obj, h5py.Dataset)
                    else None
                )
            )
    except OSError as exc:
        raise WeightsError(f"{path}: not an HDF5 file ({exc})") from exc
    # Chainer may nest the chain under a prefix (e.g. "predictor/"); keep the link/param tail.
    return {"/".join(k.split("/")[-2:]): v for k, v in out.items()}


def _read_torch(path: Path) -> dict[str, np.ndarray]:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsError(f"{path}: not a loadable torch state dict ({exc})") from exc
    if isinstance(obj, dict) and "params" in obj and isinstance(obj["params"], dict):
        obj = obj["params"]
    elif isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise WeightsError(f"{path}: expected a state dict, got {type(obj).__name__}")
    return {
        re.sub(r"^module\.", "", k): v.detach().cpu().numpy()
        for k, v in obj.items()
        if isinstance(v, torch.Tensor)
    }


def _conv_keys(name: Callable[[int, str], str]) -> dict[str, str]:
    keys = {}
    for i, idx in enumerate(CONV_INDEX, start=1):
        keys[f"features.{idx}.weight"] = name(i, "weight")
        keys[f"features.{idx}.bias"] = name(i, "bias")
    return keys


def _head_keys(names: dict[tuple[str, str], str], param: Callable[[str], str]) -> dict[str, str]:
    """names: (our head, fc1|fc2) -> source layer name; param maps weight/bias to its spelling."""
    keys = {}
    for (head, fc), src in names.items():
        for p in ("weight", "bias"):
            keys[f"{head}.{HEAD_LINEAR[fc]}.{p}"] = f"{src}{param(p)}"
    return keys


def _chainer_keys(full_reference: bool) -> dict[str, str]:
    chainer_param = {"weight": "/W", "bias": "/b"}.__getitem__
    keys = _conv_keys(lambda i, p: f"conv{i}{chainer_param(p)}")
    names = {
        ("quality", "fc1"): "fc1",
        ("quality", "fc2"): "fc2",
        ("weight", "fc1"): "fc1_a",
        ("weight", "fc2"): "fc2_a",
    }
    return keys | _head_keys(names, chainer_param)


def _lidq92_keys(full_reference: bool) -> dict[str, str]:
    keys = _conv_keys(lambda i, p: f"conv{i}.{p}")
    if full_reference:
        names = {
            ("quality", "fc1"): "fc1_q",
            ("quality", "fc2"): "fc2_q",
            ("weight", "fc1"): "fc1_w",
            ("weight", "fc2"): "fc2_w",
        }
    else:
        names = {
            ("quality", "fc1"): "fc1q_nr",
            ("quality", "fc2"): "fc2q_nr",
            ("weight", "fc1"): "fc1w_nr",
            ("weight", "fc2"): "fc2w_nr",
        }
    return keys | _head_keys(names, lambda p: f".{p}")


def _pyiqa_keys(full_reference: bool) -> dict[str, str]:
    keys = {k: k for k in _conv_keys(lambda i, p: "")}
    names = {
        ("quality", "fc1"): "fc_q.0",
        ("quality", "fc2"): "fc_q.3",
        ("weight", "fc1"): "fc_w.0",
        ("weight", "fc2"): "fc_w.3",
    }
    return keys | _head_keys(names, lambda p: f".{p}")


SOURCES: dict[str, SourceLayout] = {
    s.name: s
    for s in (
        SourceLayout("chainer", _read_hdf5, _chainer_keys, (0, 1, 2), 255.0, 1e-6, "lower_better"),
        SourceLayout("lidq92", _read_torch, _lidq92_keys, (0, 1, 2), 1.0, 1e-6, "unknown"),
        SourceLayout("pyiqa", _read_torch, _pyiqa_keys, (2, 1, 0), 1.0, 1e-8, "unknown"),
    )
}


def _infer_variant(layout: SourceLayout, tensors: dict[str, np.ndarray], path: Path) -> Variant:
    """FR vs NR from the first head's input width; weighted vs plain from the file name or heads."""
    fc1 = next(
        (
            tensors[src]
            for fr in (True, False)
            if (src := layout.key_map(fr)["quality.0.weight"]) in tensors
        ),
        None,
    )
    if fc1 is None:
        raise WeightsError(f"{path}: no quality head found for the {layout.name} layout")
    full_reference = fc1.shape[1] == 3 * FEATURE_DIM
    name = path.name.lower()
    if "weighted" in name or "wadiqam" in name:
        weighted = True
    elif "patchwise" in name or "diqam" in name:
        weighted = False
    elif layout.name == "chainer" and not full_reference:
        # The authors' NR files carry a weight head even when patchwise: it cannot be told apart.
        raise WeightsError(f"{path}: cannot tell DIQaM-NR from WaDIQaM-NR; pass --variant")
    else:
        weighted = layout.key_map(full_reference)["weight.0.weight"] in tensors
    suffix = "fr" if full_reference else "nr"
    return get_variant(f"{'wadiqam' if weighted else 'diqam'}-{suffix}")


def import_weights(
    path: str | Path, source: str, variant: str | None = None
) -> tuple[DeepIQA, WeightsMeta]:
    """Convert a published weights file into a ``DeepIQA`` model plus its metadata."""
    path = Path(path)
    try:
        layout = SOURCES[source]
    except KeyError:
        raise WeightsError(
            f"unknown source layout {source!r}; choose one of {sorted(SOURCES)}"
        ) from None
    tensors = layout.read(path)
    v = get_variant(variant) if variant else _infer_variant(layout, tensors, path)
    model = DeepIQA(v, epsilon=layout.epsilon)
    key_map = layout.key_map(v.full_reference)
    state = {}
    for ours, ref in model.state_dict().items():
        src = key_map[ours]
        if src not in tensors:
            raise WeightsError(
                f"{path}: missing {src!r} needed for {v.name} ({layout.name} layout)"
            )
        value = torch.from_numpy(np.array(tensors[src], dtype=np.float32))
        if ours in ("quality.0.weight", "weight.0.weight") and v.full_reference:
            blocks = value.split(FEATURE_DIM, dim=1)
            if len(blocks) != 3:
                raise WeightsError(f"{path}: {src} has shape {tuple(value.shape)}, not (512, 1536)")
            value = torch.cat([blocks[i] for i in layout.fusion_blocks], dim=1)
        if ours == "features.0.weight":
            value = value * layout.input_scale
        if value.shape != ref.shape:
            raise WeightsError(
                f"{path}: {src} has shape {tuple(value.shape)}, expected {tuple(ref.shape)}"
            )
        state[ours] = value
    model.load_state_dict(state, strict=True)
    meta = WeightsMeta(
        variant=v.name,
        epsilon=layout.epsilon,
        score_direction=layout.default_direction,
        source=f"converted from {layout.name} layout: {path.name}",
        description=f"{v.name} imported from {path.name}",
    )
    return model.eval(), meta
