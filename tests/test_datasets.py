"""Dataset readers on small trees built in each dataset's published layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.io import savemat

from deepiqa_core.datasets import (
    MANIFEST_COLUMNS,
    DatasetError,
    read_dataset,
    read_manifest,
    split_by_reference,
    write_manifest,
)

from .conftest import encode, make_image


def put(path: Path, fmt: str = "PNG", seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encode(make_image(40, 48, seed), fmt))
    return path


def cell(names: list[str]) -> np.ndarray:
    out = np.empty((len(names), 1), dtype=object)
    for i, n in enumerate(names):
        out[i, 0] = np.array([n])
    return out


def test_live_release2(tmp_path):
    put(tmp_path / "refimgs/bikes.bmp", "BMP")
    put(tmp_path / "refimgs/parrots.bmp", "BMP")
    dmos, orgs = np.arange(982, dtype=float) / 10, np.zeros(982)
    lines = {
        "jp2k": "bikes.bmp img1.bmp 0.1\nparrots.bmp img2.bmp 0.2\n",
        "wn": "bikes.bmp img3.bmp 1\n",
    }
    for folder, text in lines.items():
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "info.txt").write_text(text)
        for line in text.splitlines():
            put(tmp_path / folder / line.split()[1], "BMP")
    for folder in ("jpeg", "gblur", "fastfading"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "info.txt").write_text("")
    orgs[1] = 1  # jp2k img2 is a copy of its reference: skipped
    savemat(tmp_path / "dmos.mat", {"dmos": dmos[None], "orgs": orgs[None]})
    m = read_dataset("live", tmp_path)
    assert list(m.columns) == list(MANIFEST_COLUMNS)
    assert m["id"].tolist() == ["jp2k/img1.bmp", "wn/img3.bmp"]
    # wn starts after jp2k (227) and jpeg (233): entry 227 + 233 + 3 - 1
    assert m["score"].tolist() == [0.0, pytest.approx(46.2)]
    assert m["ref_id"].tolist() == ["bikes", "bikes"]
    assert set(m["score_direction"]) == {"lower_better"} and m["level"].isna().all()
    assert Path(m["ref_uri"][0]).name == "bikes.bmp"

    (tmp_path / "wn/info.txt").write_text("bikes.bmp img9.bmp 1\n")
    with pytest.raises(DatasetError, match="lists img9.bmp, but .*wn has no such file"):
        read_dataset("live", tmp_path)
    savemat(tmp_path / "dmos.mat", {"dmos": dmos[None, :900], "orgs": orgs[None, :900]})
    with pytest.raises(DatasetError, match="expected 982 entries"):
        read_dataset("live", tmp_path)


def test_tid2013(tmp_path):
    put(tmp_path / "reference_images/I01.BMP", "BMP")
    put(tmp_path / "reference_images/I02.BMP", "BMP")
    put(tmp_path / "distorted_images/i01_08_3.bmp", "BMP")
    put(tmp_path / "distorted_images/I02_24_5.BMP", "BMP")
    (tmp_path / "mos_with_names.txt").write_text("4.5 i01_08_3.bmp\n1.25 i02_24_5.bmp\n")
    m = read_dataset("tid2013", tmp_path)
    assert m["distortion"].tolist() == ["gaussian_blur", "sparse_sampling_and_reconstruction"]
    assert m["level"].tolist() == [3, 5] and m["score"].tolist() == [4.5, 1.25]
    assert m["ref_id"].tolist() == ["i01", "i02"] and (m["score_max"] == 9).all()
    assert Path(m["uri"][1]).name == "I02_24_5.BMP"  # case differs from the score file
    (tmp_path / "mos_with_names.txt").write_text("4.5 i01_08_3.bmp\nbad line\n")
    with pytest.raises(DatasetError, match=r"mos_with_names.txt:2: expected"):
        read_dataset("tid2013", tmp_path)
    (tmp_path / "mos_with_names.txt").write_text("4.5 i01_25_3.bmp\n")
    with pytest.raises(DatasetError, match="unknown type 25"):
        read_dataset("tid2013", tmp_path)


def test_kadid10k(tmp_path):
    for name in ("I01.png", "I01_01_01.png", "I01_25_05.png", "I02.png", "I02_19_02.png"):
        put(tmp_path / "images" / name)
    pd.DataFrame(
        {
            "dist_img": ["I01_01_01.png", "I01_25_05.png", "I02_19_02.png"],
            "ref_img": ["I01.png", "I01.png", "I02.png"],
            "dmos": [4.57, 1.2, 3.0],
            "var": [0.1, 0.2, 0.3],
        }
    ).to_csv(tmp_path / "dmos.csv", index=False)
    m = read_dataset("kadid10k", tmp_path)
    assert m["distortion"].tolist() == ["gaussian_blur", "contrast_change", "jitter"]
    assert m["level"].tolist() == [1, 5, 2] and m["ref_id"].tolist() == ["I01", "I01", "I02"]
    assert set(m["score_direction"]) == {"higher_better"}
    (tmp_path / "images/I02_19_02.png").unlink()
    with pytest.raises(DatasetError, match="I02_19_02.png, but .*images has no such file"):
        read_dataset("kadid10k", tmp_path)
    pd.DataFrame({"image": ["x"], "score": [1]}).to_csv(tmp_path / "dmos.csv", index=False)
    with pytest.raises(DatasetError, match="missing columns"):
        read_dataset("kadid10k", tmp_path)


def test_csiq_from_its_excel_sheet(tmp_path):
    from openpyxl import Workbook

    put(tmp_path / "src_imgs/1600.png")
    put(tmp_path / "src_imgs/aerial_city.png")
    put(tmp_path / "dst_imgs/awgn/1600.AWGN.1.png")
    put(tmp_path / "dst_imgs/jpeg2000/aerial_city.jpeg2000.3.png")
    put(tmp_path / "dst_imgs/fnoise/1600.fnoise.5.png")
    book = Workbook()
    sheet = book.active
    sheet.title = "all_by_image"
    sheet.append(["CSIQ DMOS"])  # a title row above the header
    sheet.append(["image", "dst_idx", "dst_type", "dst_lev", "dmos_std", "dmos"])
    sheet.append([1600, 1, "noise", 1, 0.01, 0.062])
    sheet.append(["aerial_city", 3, "jpeg 2000", 3, 0.02, 0.31])
    sheet.append([1600, 4, "1/f noise", 5, 0.03, 0.7])
    book.save(tmp_path / "csiq.DMOS.xlsx")
    m = read_dataset("csiq", tmp_path)
    assert m["id"].tolist() == [
        "awgn/1600.AWGN.1.png",
        "jpeg2000/aerial_city.jpeg2000.3.png",
        "fnoise/1600.fnoise.5.png",
    ]
    assert m["distortion"].tolist() == ["white_noise", "jpeg2000", "pink_noise"]
    assert m["ref_id"].tolist() == ["1600", "aerial_city", "1600"]
    assert m["score"].tolist() == [0.062, 0.31, 0.7] and set(m["score_direction"]) == {
        "lower_better"
    }
    sheet.append([1600, 9, "rain", 1, 0.0, 0.5])
    book.save(tmp_path / "csiq.DMOS.xlsx")
    with pytest.raises(DatasetError, match="unknown dst_type 'rain'"):
        read_dataset("csiq", tmp_path)


def test_clive_skips_the_seven_training_examples(tmp_path):
    root = tmp_path / "ChallengeDB_release"
    names = [f"t{i}.bmp" for i in range(1, 8)] + ["10.JPG", "100.bmp"]
    for i, name in enumerate(names):
        put(
            root / "Images" / ("trainingImages" if i < 7 else "") / name,
            "BMP" if "bmp" in name else "JPEG",
        )
    (root / "Data").mkdir()
    savemat(root / "Data/AllImages_release.mat", {"AllImages_release": cell(names)})
    savemat(root / "Data/AllMOS_release.mat", {"AllMOS_release": np.arange(9.0)[None] * 10})
    m = read_dataset("clive", tmp_path)
    assert m["id"].tolist() == ["10.JPG", "100.bmp"] and m["score"].tolist() == [70.0, 80.0]
    assert m["ref_uri"].isna().all() and m["ref_id"].tolist() == m["id"].tolist()
    from deepiqa_core.datasets.clive import read_clive

    assert len(read_clive(root, include_training_examples=True)) == 9
    savemat(root / "Data/AllMOS_release.mat", {"AllMOS_release": np.arange(5.0)[None]})
    with pytest.raises(DatasetError, match="9 names but .* 5 scores"):
        read_dataset("clive", tmp_path)


def test_koniq10k(tmp_path):
    put(tmp_path / "1024x768/826373.jpg", "JPEG")
    put(tmp_path / "1024x768/100.jpg", "JPEG")
    pd.DataFrame(
        {
            "image_name": ["826373.jpg", "100.jpg"],
            "MOS": [3.9, 2.1],
            "SD": [0.5, 0.6],
            "MOS_zscore": [72.5, 30.1],
        }
    ).to_csv(tmp_path / "koniq10k_scores_and_distributions.csv", index=False)
    m = read_dataset("koniq10k", tmp_path)
    assert m["score"].tolist() == [72.5, 30.1] and (m["score_max"] == 100).all()
    from deepiqa_core.datasets.koniq import read_koniq10k

    assert read_koniq10k(tmp_path, score_column="MOS")["score_max"].tolist() == [5.0, 5.0]
    with pytest.raises(DatasetError, match="unknown dataset 'koniq'"):
        read_dataset("koniq", tmp_path)
    with pytest.raises(DatasetError, match="KonIQ-10k score file not found"):
        read_dataset("koniq10k", tmp_path / "1024x768")


def test_manifest_round_trips_and_rejects_duplicates(tmp_path):
    put(tmp_path / "1024x768/a.jpg", "JPEG")
    pd.DataFrame({"image_name": ["a.jpg"], "MOS_zscore": [50.0]}).to_csv(
        tmp_path / "koniq10k_scores_and_distributions.csv", index=False
    )
    m = read_dataset("koniq10k", tmp_path)
    for name in ("m.parquet", "m.csv"):
        write_manifest(m, tmp_path / name)
        pd.testing.assert_frame_equal(read_manifest(tmp_path / name), m, check_dtype=False)
    write_manifest(pd.concat([m, m]), tmp_path / "twice.parquet")
    with pytest.raises(DatasetError, match="not unique"):
        read_manifest(tmp_path / "twice.parquet")
    write_manifest(m.drop(columns=["ref_id"]), tmp_path / "short.parquet")
    with pytest.raises(DatasetError, match=r"lacks columns \['ref_id'\]"):
        read_manifest(tmp_path / "short.parquet")


def test_splits_are_by_reference_seeded_and_60_20_20():
    refs = [f"r{i}" for i in range(10) for _ in range(3)]
    m = pd.DataFrame({"ref_id": refs})
    split = split_by_reference(m, seed=1)
    assert split.tolist() == split_by_reference(m, seed=1).tolist()
    assert split.tolist() != split_by_reference(m, seed=2).tolist()
    per_ref = pd.DataFrame({"ref": refs, "split": split}).groupby("ref")["split"].nunique()
    assert (per_ref == 1).all()  # no reference in two splits
    assert split.value_counts().to_dict() == {"train": 18, "val": 6, "test": 6}
    assert set(split_by_reference(m, (0.8, 0.2, 0.0), seed=0)) == {"train", "val"}
    with pytest.raises(ValueError, match="summing to 1"):
        split_by_reference(m, (0.5, 0.2, 0.2))
