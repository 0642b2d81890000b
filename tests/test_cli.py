import csv
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from deepiqa_core.cli import SAMPLES, main

from .conftest import encode, make_image
from .source_layouts import make_source_params, write_source_file


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def nr_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "a.png").write_bytes(encode(make_image(64, 96, seed=1)))
    (folder / "b.jpg").write_bytes(encode(make_image(100, 80, seed=2), "JPEG", quality=80))
    (folder / "corrupt.jpg").write_bytes(encode(make_image(64, 64), "JPEG")[:200])
    (folder / "tiny.png").write_bytes(encode(make_image(20, 20)))
    (folder / "notes.txt").write_text("not an image and not listed")
    return folder


def test_folder_scoring_reports_bad_files_and_scores_the_rest(capsys, nr_folder, weights_dir):
    code, out, err = run(
        capsys,
        "score",
        str(nr_folder),
        "--weights",
        str(weights_dir / "wadiqam-nr.safetensors"),
        "--format",
        "json",
    )
    rows = {Path(r["path"]).name: r for r in json.loads(out)}
    assert code == 1  # partial success
    assert set(rows) == {"a.png", "b.jpg", "corrupt.jpg", "tiny.png"}
    assert rows["a.png"]["num_patches"] == 2 * 3 and rows["a.png"]["error_code"] is None
    assert isinstance(rows["b.jpg"]["score"], float)
    assert rows["corrupt.jpg"]["error_code"] == "decode_error"
    assert rows["corrupt.jpg"]["score"] is None
    assert rows["tiny.png"]["error_code"] == "too_small"
    assert "scored 2/4" in err


def test_single_image_score_matches_the_folder_score(capsys, nr_folder, weights_dir):
    w = str(weights_dir / "wadiqam-nr.safetensors")
    code, out, _ = run(capsys, "score", str(nr_folder / "a.png"), "--weights", w, "--format", "csv")
    single = next(csv.DictReader(io.StringIO(out)))
    _, out, _ = run(capsys, "score", str(nr_folder), "--weights", w, "--format", "csv")
    folder = {Path(r["path"]).name: r for r in csv.DictReader(io.StringIO(out))}
    assert code == 0
    assert float(single["score"]) == pytest.approx(float(folder["a.png"]["score"]), abs=1e-9)


def test_table_output_and_file_output(capsys, nr_folder, weights_dir, tmp_path):
    target = tmp_path / "scores.csv"
    w = str(weights_dir / "diqam-nr.safetensors")
    code, out, _ = run(
        capsys,
        "score",
        str(nr_folder),
        "--weights",
        w,
        "--format",
        "csv",
        "--output",
        str(target),
        "--quiet",
    )
    assert code == 1 and out == ""
    assert len(list(csv.DictReader(target.open()))) == 4
    _, table, _ = run(capsys, "score", str(nr_folder), "--weights", w)
    lines = table.splitlines()
    assert lines[0].split()[:3] == ["path", "score", "num_patches"]
    assert any("decode_error" in line for line in lines)


def test_fr_folders_pair_by_name_and_report_unpaired_and_size_mismatch(
    capsys, tmp_path, weights_dir
):
    refs, dist = tmp_path / "ref", tmp_path / "dist"
    refs.mkdir(), dist.mkdir()
    ref_a = make_image(64, 96, seed=3)
    (refs / "a.png").write_bytes(encode(ref_a))
    (refs / "b.png").write_bytes(encode(make_image(64, 64, seed=4)))
    (dist / "a__jpeg.jpg").write_bytes(encode(ref_a, "JPEG", quality=10))
    (dist / "a__noise.png").write_bytes(encode(255 - ref_a))
    (dist / "b__crop.png").write_bytes(encode(make_image(64, 96, seed=4)))
    (dist / "c__blur.png").write_bytes(encode(make_image(64, 96, seed=5)))
    code, out, _ = run(
        capsys,
        "score",
        str(dist),
        "--ref",
        str(refs),
        "--weights",
        str(weights_dir / "wadiqam-fr.safetensors"),
        "--format",
        "json",
    )
    rows = {Path(r["path"]).name: r for r in json.loads(out)}
    assert code == 1
    assert Path(rows["a__jpeg.jpg"]["reference"]).name == "a.png"
    assert rows["a__jpeg.jpg"]["score"] != rows["a__noise.png"]["score"]
    assert rows["b__crop.png"]["error_code"] == "size_mismatch"
    assert rows["c__blur.png"]["error_code"] == "unpaired"


def test_quality_map_is_written_as_three_panels(capsys, tmp_path, weights_dir):
    image = tmp_path / "img.png"
    image.write_bytes(encode(make_image(70, 100, seed=6)))
    target = tmp_path / "map.png"
    code, _, _ = run(
        capsys,
        "score",
        str(image),
        "--weights",
        str(weights_dir / "wadiqam-nr.safetensors"),
        "--map",
        str(target),
    )
    assert code == 0
    picture = np.asarray(Image.open(target))
    assert picture.shape[1:] == (3 * 100 + 2 * 8, 3) and picture.shape[0] > 70  # + labels band
    quality_panel = picture[:64, 108 : 108 + 96]
    assert quality_panel.std() > 5  # patches coloured differently
    assert np.array_equal(picture[:70, :100], make_image(70, 100, seed=6))


def test_bundled_samples_score_with_both_model_kinds(capsys, weights_dir):
    code, out, _ = run(
        capsys,
        "score",
        str(SAMPLES / "nr"),
        "--weights",
        str(weights_dir / "wadiqam-nr.safetensors"),
        "--format",
        "json",
    )
    assert code == 0 and len(json.loads(out)) == 4
    code, out, _ = run(
        capsys,
        "score",
        str(SAMPLES / "fr" / "distorted"),
        "--ref",
        str(SAMPLES / "fr" / "reference"),
        "--weights",
        str(weights_dir / "diqam-fr.safetensors"),
        "--format",
        "json",
    )
    assert code == 0 and len(json.loads(out)) == 6


def test_exit_codes_follow_the_one_table(capsys, nr_folder, weights_dir, tmp_path):
    fr = str(weights_dir / "wadiqam-fr.safetensors")
    nr = str(weights_dir / "diqam-nr.safetensors")
    code, _, err = run(capsys, "score", str(nr_folder), "--weights", fr)  # FR without --ref
    assert code == 2 and "full-reference: give --ref" in err
    with_map = ["score", str(nr_folder), "--weights", fr, "--ref", str(nr_folder), "--map", "x.png"]
    code, _, err = run(capsys, *with_map)
    assert code == 2 and "--map needs a single image" in err
    code, _, err = run(capsys, "score", str(tmp_path / "nope"), "--weights", nr)
    assert code == 2 and "does not exist" in err
    code, _, err = run(capsys, "score", str(nr_folder), "--weights", str(tmp_path))
    assert code == 2 and "is not a file" in err
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"garbage")
    code, _, err = run(capsys, "score", str(nr_folder), "--weights", str(bad))
    assert code == 3 and "safetensors" in err and "Traceback" not in err
    only_bad = tmp_path / "only_bad"
    only_bad.mkdir()
    shutil.copy(nr_folder / "corrupt.jpg", only_bad)
    assert run(capsys, "score", str(only_bad), "--weights", nr)[0] == 1  # threshold 0 breached
    tolerant = ["score", str(nr_folder), "--weights", nr, "--max-error-rate", "0.5"]
    assert run(capsys, *tolerant)[0] == 0  # 2 of 4 failed: not above half


def test_convert_then_info_then_score(capsys, tmp_path):
    src = tmp_path / "fr_live_weighted.model"
    write_source_file("chainer", make_source_params("chainer", True, True), src)
    dst = tmp_path / "fr.safetensors"
    code, out, _ = run(
        capsys, "convert", str(src), str(dst), "--from", "chainer", "--training-data", "LIVE"
    )
    assert code == 0 and "wadiqam-fr" in out
    code, out, _ = run(capsys, "info", str(dst))
    info = json.loads(out)
    assert code == 0
    assert info["variant"] == "wadiqam-fr" and info["parameters"] == 6_287_138
    assert info["score_direction"] == "lower_better" and info["training_data"] == "LIVE"
    assert "chainer" in info["source"] and len(info["sha256"]) == 64


def test_init_writes_untrained_weights_that_say_so(capsys, tmp_path):
    dst = tmp_path / "u.safetensors"
    assert run(capsys, "init", str(dst), "--variant", "diqam-nr", "--seed", "3")[0] == 0
    _, out, _ = run(capsys, "info", str(dst))
    assert "UNTRAINED" in json.loads(out)["description"]


def test_installed_entry_point_has_help():
    exe = Path(sys.executable).with_name("deepiqa")
    result = subprocess.run([str(exe), "score", "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    for word in ("--weights", "--ref", "--map", "--patch-budget", "exit codes", "unpaired"):
        assert word in result.stdout


def test_precision_flag_runs_bf16_on_cpu_and_says_so(capsys):
    photos = str(SAMPLES / "nr")
    _, out, err = run(capsys, "score", photos, "--format", "json", "--precision", "fp32")
    assert "on cpu/fp32" in err
    exact = {r["path"]: r["score"] for r in json.loads(out)}
    code, out, err = run(capsys, "score", photos, "--format", "json", "--precision", "bf16")
    fast = {r["path"]: r["score"] for r in json.loads(out)}
    assert code == 0 and "on cpu/bf16" in err and fast.keys() == exact.keys()
    diffs = [abs(fast[k] - exact[k]) for k in exact]
    # on the default's calibrated scale, whose slope (up to 27 per raw point) multiplies bf16's
    # raw differences (<= 0.5, tests/test_precision.py); the model card measured 1.33 at most
    assert 0 < max(diffs) <= 2.0
    with pytest.raises(SystemExit) as exit_:
        main(["score", photos, "--precision", "fp8"])
    assert exit_.value.code == 2 and "invalid choice: 'fp8'" in capsys.readouterr().err
