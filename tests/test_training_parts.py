"""Training building blocks without Spark: example preparation, crops, DDP with uneven shards."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import torch.multiprocessing as mp

from deepiqa_core.training.examples import fetch_examples
from deepiqa_core.training.loop import Batch, FitConfig, fit
from deepiqa_core.training.patch_sampling import crop_rng, random_crops

from .conftest import encode, make_image


def test_examples_carry_bytes_or_an_error_code(tmp_path):
    ref, small_ref, img = tmp_path / "r.png", tmp_path / "s.png", tmp_path / "i.png"
    ref.write_bytes(encode(make_image(40, 48)))
    small_ref.write_bytes(encode(make_image(36, 48)))
    img.write_bytes(encode(make_image(40, 48, seed=1)))
    rows = pd.DataFrame(
        {
            "row_id": [0, 1, 2, 3, 4],
            "id": list("abcde"),
            "uri": [str(img), str(img), str(img), str(tmp_path / "gone.png"), str(img)],
            "ref_uri": [str(ref), None, str(small_ref), str(ref), str(tmp_path / "gone.png")],
            "score": [1.0] * 5,
        }
    )
    fr = fetch_examples(rows, full_reference=True)
    assert fr["error_code"].tolist() == [None, "unpaired", "size_mismatch", "missing", "missing"]
    assert fr["image"][0] == img.read_bytes() and fr["ref_image"][0] == ref.read_bytes()
    assert "reference" in fr["error_message"][4]
    nr = fetch_examples(rows, full_reference=False)  # NR training ignores the references
    assert nr["error_code"].tolist() == [None, None, None, "missing", None]
    assert nr["ref_image"].isna().all()


def test_crops_depend_on_seed_epoch_and_row_only():
    img = make_image(50, 60, seed=2)
    ref = 255 - img  # crops at the same places in both: every ref crop is 255 - its image crop
    a, ra = random_crops(img, 8, crop_rng(0, 1, 7), ref)
    b, rb = random_crops(img, 8, crop_rng(0, 1, 7), ref)
    c, _ = random_crops(img, 8, crop_rng(0, 2, 7), ref)
    assert a.shape == (8, 3, 32, 32) and a.dtype == np.uint8
    assert np.array_equal(a, b) and np.array_equal(ra, rb) and not np.array_equal(a, c)
    assert np.array_equal(ra, 255 - a)
    # a picture whose pixels say where they are: each crop is the 32x32 slice at its corner
    yy, xx = np.mgrid[0:50, 0:60]
    where = np.stack([yy, xx, np.zeros_like(yy)], -1).astype(np.uint8)
    crops, _ = random_crops(where, 16, crop_rng(5, 0, 0))
    for crop in crops:
        y, x = int(crop[0, 0, 0]), int(crop[1, 0, 0])
        assert y <= 50 - 32 and x <= 60 - 32
        assert np.array_equal(crop, where[y : y + 32, x : x + 32].transpose(2, 0, 1))
    with pytest.raises(ValueError, match="smaller than one 32px patch"):
        random_crops(img[:20], 1, crop_rng(0, 0, 0))


class Uneven:
    """Rank r has 3 + 2r batches: without agreement rank 1 would wait forever in all-reduce."""

    def __init__(self, rank: int) -> None:
        self.rank = rank

    def batches(self, epoch: int):
        rng = np.random.default_rng([epoch, self.rank])
        for _ in range(3 + 2 * self.rank):
            yield Batch(
                rng.integers(0, 255, (2, 4, 3, 32, 32), dtype=np.uint8),
                None,
                np.ones(2, np.float32),
            )


def _rank(rank: int, world: int, port: int, run_dir: str, out) -> None:
    import torch.distributed as dist

    from deepiqa_core import DeepIQA

    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world
    )
    torch.manual_seed(0)
    result = fit(
        DeepIQA("diqam-nr"),
        Uneven(rank),
        FitConfig(epochs=2, batch_images=2, patches_per_image=4),
        device=torch.device("cpu"),
        run_dir=__import__("pathlib").Path(run_dir),
        log=lambda _: None,
    )
    out.put((rank, [h["steps"] for h in result.history] if rank == 0 else None))
    dist.destroy_process_group()


@pytest.mark.slow
def test_ddp_ranks_with_uneven_shards_stop_together(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_rank, args=(r, 2, port, str(tmp_path), out)) for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0]
    results = dict(out.get(timeout=5) for _ in range(2))
    assert results[0] == [3, 3]  # both epochs stopped when rank 0's 3 batches ran out
    assert (tmp_path / "checkpoints/epoch-00002.pt").exists()
