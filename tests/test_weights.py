import json
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from deepiqa_core import (
    Scorer,
    WeightsError,
    WeightsMeta,
    import_weights,
    load_weights,
    read_meta,
    save_weights,
)
from deepiqa_core.patches import cut_grid, grid_for
from deepiqa_core.weights import weights_sha256

from .conftest import make_image, trained_like
from .source_layouts import make_source_params, source_forward, write_source_file


def _patches(image: np.ndarray) -> torch.Tensor:
    grid = grid_for(image.shape[0], image.shape[1])
    return cut_grid(torch.from_numpy(image), grid, 0, grid.rows)


def test_round_trip_keeps_tensors_and_metadata(tmp_path: Path) -> None:
    model = trained_like("wadiqam-fr")
    meta = WeightsMeta(
        variant="wadiqam-fr",
        score_direction="higher_better",
        score_name="weak-label quality",
        score_range=[0.0, 100.0],
        training_data="synthetic KADID-style set",
        metrics={"srocc": 0.91},
        version="1.2",
    )
    path = tmp_path / "m.safetensors"
    save_weights(model, path, meta)
    loaded, meta2 = load_weights(path)
    assert meta2 == meta
    for (k, a), (k2, b) in zip(
        model.state_dict().items(), loaded.state_dict().items(), strict=True
    ):
        assert k == k2 and torch.equal(a, b)
    assert read_meta(path.read_bytes()).metrics == {"srocc": 0.91}
    assert load_weights(path.read_bytes())[1] == meta  # bytes, e.g. from a Spark broadcast


def test_half_precision_files_load_as_float32_with_small_drift(tmp_path: Path) -> None:
    model = trained_like("wadiqam-nr")
    full, half = tmp_path / "f.safetensors", tmp_path / "h.safetensors"
    save_weights(model, full, WeightsMeta(variant="wadiqam-nr"))
    save_weights(model, half, WeightsMeta(variant="wadiqam-nr"), half=True)
    assert half.stat().st_size < 0.55 * full.stat().st_size
    m16, _ = load_weights(half)
    assert all(p.dtype == torch.float32 for p in m16.parameters())
    image = make_image(96, 96)
    a = Scorer(model, device="cpu").score_one(image).score
    b = Scorer(m16, device="cpu").score_one(image).score
    assert a != b and abs(a - b) < 0.5


def test_hash_names_the_bytes(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    save_weights(trained_like("diqam-nr"), path, WeightsMeta(variant="diqam-nr"))
    assert weights_sha256(path) == weights_sha256(path.read_bytes())
    assert len(weights_sha256(path)) == 64


def test_plain_safetensors_without_metadata_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "plain.safetensors"
    save_file({k: v.contiguous() for k, v in trained_like("diqam-nr").state_dict().items()}, path)
    with pytest.raises(WeightsError, match="convert"):
        load_weights(path)


def test_foreign_fusion_order_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    meta = WeightsMeta(variant="diqam-fr", fusion_order="r,d,d-r")
    save_weights(trained_like("diqam-fr"), path, meta)
    with pytest.raises(WeightsError, match="fusion"):
        load_weights(path)


def test_tensors_that_do_not_fit_the_variant_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    tensors = {k: v.contiguous() for k, v in trained_like("diqam-nr").state_dict().items()}
    meta = WeightsMeta(variant="wadiqam-nr")
    save_file(tensors, path, metadata={"deepiqa": meta.to_json()})
    with pytest.raises(WeightsError, match="do not fit"):
        load_weights(path)


@pytest.mark.parametrize("data", [b"", b"\x00" * 4, struct.pack("<Q", 10**9) + b"{}"])
def test_truncated_or_garbage_files_are_weights_errors(data: bytes) -> None:
    with pytest.raises(WeightsError):
        load_weights(data)


# Importers: (layout, FR?, file has weight head?, --variant or None, file name, expected variant)
CASES = [
    ("chainer", True, True, None, "fr_live_weighted.model", "wadiqam-fr"),
    ("chainer", True, False, None, "fr_tid_patchwise.model", "diqam-fr"),
    ("chainer", False, True, None, "nr_live_weighted.model", "wadiqam-nr"),
    ("chainer", False, True, None, "nr_tid_patchwise.model", "diqam-nr"),  # has fc*_a too
    ("lidq92", True, True, None, "WaDIQaM-FR-KADID.pth", "wadiqam-fr"),
    ("lidq92", False, True, None, "WaDIQaM-NR.pth", "wadiqam-nr"),
    ("lidq92", False, True, "diqam-nr", "nr.pth", "diqam-nr"),
    ("pyiqa", True, True, None, "WaDIQaM_FR_KADID.pth", "wadiqam-fr"),
    ("pyiqa", False, False, None, "DIQaM_NR_koniq.pth", "diqam-nr"),
    ("pyiqa", False, True, None, "checkpoint.pth", "wadiqam-nr"),  # told by its fc_w head
]


@pytest.mark.parametrize(("layout", "fr", "has_w", "variant", "name", "expected"), CASES)
def test_converted_model_scores_like_the_source_network(
    tmp_path: Path,
    layout: str,
    fr: bool,
    has_w: bool,
    variant: str | None,
    name: str,
    expected: str,
) -> None:
    params = make_source_params(layout, fr, has_w, seed=len(name))
    path = tmp_path / name
    write_source_file(layout, params, path)
    model, meta = import_weights(path, layout, variant)
    assert model.variant.name == meta.variant == expected
    assert model.epsilon == meta.epsilon == (1e-8 if layout == "pyiqa" else 1e-6)
    expected_weighted = expected.startswith("wadiqam")
    ref = make_image(96, 128, seed=1)
    dist = np.clip(ref.astype(int) + np.random.default_rng(2).integers(-60, 60, ref.shape), 0, 255)
    dist = dist.astype(np.uint8)
    with torch.no_grad():
        want = source_forward(
            layout, params, fr, expected_weighted, _patches(dist), _patches(ref) if fr else None
        ).item()
    got = Scorer(model, device="cpu").score_one(dist, ref if fr else None).score
    assert abs(want) > 1e-3
    assert got == pytest.approx(want, rel=1e-4, abs=1e-4)
    # and through the project's own file format
    out = tmp_path / "converted.safetensors"
    save_weights(model, out, meta)
    again = Scorer(load_weights(out)[0], device="cpu").score_one(dist, ref if fr else None)
    assert again.score == pytest.approx(got, abs=1e-9)


def test_chainer_nr_file_without_a_variant_hint_asks_for_one(tmp_path: Path) -> None:
    path = tmp_path / "model.model"
    write_source_file("chainer", make_source_params("chainer", False, True), path)
    with pytest.raises(WeightsError, match="--variant"):
        import_weights(path, "chainer")


def test_missing_keys_are_named(tmp_path: Path) -> None:
    params = make_source_params("lidq92", True, True)
    del params["conv7.weight"]
    path = tmp_path / "WaDIQaM-FR.pth"
    write_source_file("lidq92", params, path)
    with pytest.raises(WeightsError, match="conv7.weight"):
        import_weights(path, "lidq92")


def test_fr_head_with_wrong_width_is_refused(tmp_path: Path) -> None:
    params = make_source_params("pyiqa", True, True)
    params["fc_q.0.weight"] = params["fc_q.0.weight"][:, :1000]
    path = tmp_path / "WaDIQaM_FR.pth"
    write_source_file("pyiqa", params, path)
    with pytest.raises(WeightsError):
        import_weights(path, "pyiqa")


class Payload:
    def __reduce__(self):  # what a malicious checkpoint would do on unpickling
        return (Path.touch, (Path("/tmp/deepiqa-pwned"),))


def test_torch_files_are_never_unpickled_unsafely(tmp_path: Path) -> None:
    path = tmp_path / "evil.pth"
    marker = Path("/tmp/deepiqa-pwned")
    marker.unlink(missing_ok=True)
    torch.save({"params": {"x": torch.zeros(1)}, "evil": Payload()}, path)
    with pytest.raises(WeightsError):
        import_weights(path, "pyiqa", "diqam-nr")
    assert not marker.exists()


def test_chainer_importer_rejects_files_that_are_not_hdf5(tmp_path: Path) -> None:
    path = tmp_path / "fr_live_weighted.model"
    path.write_bytes(json.dumps({"not": "hdf5"}).encode())
    with pytest.raises(WeightsError, match="HDF5"):
        import_weights(path, "chainer")
