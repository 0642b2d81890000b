import numpy as np
import pandas as pd
import pytest

from deepiqa_core import Scorer, decode_image
from deepiqa_core.batch import BatchConfig, BatchScorer, output_columns

from .conftest import encode, make_image, trained_like


@pytest.fixture(scope="module")
def fr_batch() -> BatchScorer:
    scorer = Scorer(trained_like("wadiqam-fr", seed=2), device="cpu")
    return BatchScorer(scorer, "wadiqam-fr", "0" * 64, BatchConfig(decode_workers=2))


def test_every_row_gets_exactly_one_output_row_in_order(tmp_path):
    scorer = Scorer(trained_like("wadiqam-nr"), device="cpu")
    batch = BatchScorer(scorer, "wadiqam-nr", "f" * 64, BatchConfig(patch_budget=8))
    good = tmp_path / "good.png"
    good.write_bytes(encode(make_image(64, 96)))
    frame = pd.DataFrame(
        {
            "id": ["a", "b", "c", "d"],
            "uri": [str(good), str(tmp_path / "missing.png"), None, None],
            "image": [None, None, encode(make_image(40, 40)), b"junk"],
        }
    )
    out = batch.score_frame(frame)
    assert list(out.columns) == [name for name, _ in output_columns(batch.config)]
    assert out["id"].tolist() == ["a", "b", "c", "d"]
    assert out["error_code"].tolist() == [None, "missing", None, "decode_error"]
    assert out["score"][0] == pytest.approx(
        scorer.score_one(decode_image(good.read_bytes())).score, abs=1e-9
    )
    assert out["num_patches"][0] == 6 and out["num_patches"][2] == 1
    assert out["score"][[1, 3]].isna().all() and out["num_patches"][[1, 3]].isna().all()


def test_shared_reference_is_read_and_featurised_once(fr_batch, tmp_path):
    ref = make_image(64, 64, seed=3)
    (tmp_path / "ref.png").write_bytes(encode(ref))
    blobs = [encode(np.clip(ref.astype(int) + k, 0, 255).astype(np.uint8)) for k in (5, 25, 50)]
    calls = []
    inner = fr_batch.scorer.reference_features
    fr_batch.scorer.reference_features = lambda im: (calls.append(1), inner(im))[1]
    try:
        frame = pd.DataFrame(
            {
                "id": ["x", "y", "z", "u"],
                "uri": [None] * 4,
                "image": [*blobs, blobs[0]],
                "ref_uri": [str(tmp_path / "ref.png")] * 3 + [None],
            }
        )
        out = fr_batch.score_frame(frame)
    finally:
        fr_batch.scorer.reference_features = inner
    assert len(calls) == 1
    assert out["error_code"].tolist() == [None, None, None, "unpaired"]
    assert out["ref_uri"][0] == str(tmp_path / "ref.png")
    assert len(set(out["score"][:3])) == 3


def test_reference_size_mismatch_and_resize(tmp_path):
    scorer = Scorer(trained_like("diqam-fr", seed=4), device="cpu")
    (tmp_path / "ref.png").write_bytes(encode(make_image(64, 128, seed=5)))
    frame = pd.DataFrame(
        {
            "id": ["a"],
            "uri": [None],
            "image": [encode(make_image(64, 96))],
            "ref_uri": [str(tmp_path / "ref.png")],
        }
    )
    strict = BatchScorer(scorer, "diqam-fr", "0" * 64, BatchConfig())
    assert strict.score_frame(frame)["error_code"][0] == "size_mismatch"
    lenient = BatchScorer(scorer, "diqam-fr", "0" * 64, BatchConfig(resize_reference=True))
    out = lenient.score_frame(frame)
    assert out["error_code"][0] is None and out["num_patches"][0] == 6


def test_patch_arrays_pool_to_the_score():
    scorer = Scorer(trained_like("wadiqam-nr"), device="cpu")
    batch = BatchScorer(scorer, "wadiqam-nr", "0" * 64, BatchConfig(with_patches=True))
    out = batch.score_frame(
        pd.DataFrame({"id": ["a"], "uri": [None], "image": [encode(make_image(64, 96))]})
    )
    q = np.asarray(out["patch_quality"][0], dtype=np.float64)
    w = np.asarray(out["patch_weight"][0], dtype=np.float64)
    assert out["patch_x"][0].tolist() == [0, 32, 64, 0, 32, 64]
    assert out["score"][0] == pytest.approx(float((q * w).sum() / w.sum()), rel=1e-12)
