"""Training: the single-process command and the real spark-submit jobs/train.py (2 DDP processes
on local[2]), including a run killed with SIGKILL and resumed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from safetensors.torch import load_file

from deepiqa_core.cli import main as cli_main
from deepiqa_core.datasets import read_manifest, write_manifest
from deepiqa_core.training.synthetic import generate_local
from deepiqa_core.weights import load_weights

from .conftest import JOBS, encode, make_image

TINY = ["--batch-images", "2", "--patches-per-image", "4", "--split", "0.5", "0.25", "0.25"]


@pytest.fixture(scope="session")
def tiny_set(tmp_path_factory) -> Path:
    """4 photos x 2 types x 5 levels, 64x80 px: the smallest set that trains and splits."""
    root = tmp_path_factory.mktemp("tiny")
    photos = []
    for i in range(4):
        path = root / "photos" / f"p{i}.png"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(encode(make_image(64, 80, seed=i)))
        photos.append(str(path))
    generate_local(photos, root / "set", long_side=80, distortions=["gaussian_blur", "white_noise"])
    return root / "set" / "manifest.parquet"


def same_weights(a: Path, b: Path) -> bool:
    x, y = load_file(str(a)), load_file(str(b))
    return x.keys() == y.keys() and all(bool((x[k] == y[k]).all()) for k in x)


def epochs(run: Path) -> list[dict]:
    """The per-epoch log without wall times (which differ between runs)."""
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k != "seconds"} for line in lines]


def test_single_process_training_resumes_exactly_and_rejects_bad_rows(tiny_set, tmp_path, capsys):
    manifest = read_manifest(tiny_set)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG not really")
    extra = manifest.iloc[:1].assign(id="broken", uri=str(broken))
    write_manifest(pd.concat([manifest, extra], ignore_index=True), tmp_path / "m.parquet")
    args = ["train", "--manifest", str(tmp_path / "m.parquet"), "--variant", "diqam-nr", *TINY]

    assert cli_main([*args, "--output", str(tmp_path / "a"), "--epochs", "3"]) == 0
    assert cli_main([*args, "--output", str(tmp_path / "b"), "--epochs", "2"]) == 0
    assert cli_main([*args, "--output", str(tmp_path / "b"), "--epochs", "3", "--resume"]) == 0
    out = capsys.readouterr().out
    assert "resuming from epoch-00002.pt: epoch 3 of 3" in out
    assert same_weights(tmp_path / "a/model.safetensors", tmp_path / "b/model.safetensors")
    assert epochs(tmp_path / "a") == epochs(tmp_path / "b")
    assert [e["epoch"] for e in epochs(tmp_path / "a")] == [1, 2, 3]
    assert all(
        e["steps"] > 0 and e["loss"] > 0 and "val_srocc" in e for e in epochs(tmp_path / "a")
    )

    prepared = json.loads((tmp_path / "a/data/prepared.json").read_text())
    assert prepared["rejected"] == {"decode_error": 1}
    assert sum(prepared["rows"].values()) == len(manifest) == 40
    rejected = pd.read_parquet(tmp_path / "a/data/rejected.parquet")
    assert rejected["id"].tolist() == ["broken"]

    model, meta = load_weights(tmp_path / "a/model.safetensors")
    assert meta.variant == "diqam-nr" and meta.score_direction == "higher_better"
    assert meta.score_range == [0.0, 100.0] and "synthetic-weak-v1" in meta.training_data
    assert {"val_srocc", "test_srocc", "best_epoch"} <= set(meta.metrics)
    report = json.loads((tmp_path / "a/report.json").read_text())
    assert set(report["reports"]["test"]["distortions"]["synthetic-weak-v1"]) == {
        "gaussian_blur",
        "white_noise",
    }

    # an existing run needs --resume or --overwrite; a resume must not change the protocol
    assert cli_main([*args, "--output", str(tmp_path / "a"), "--epochs", "3"]) == 2
    other = ["--batch-images", "4", "--output", str(tmp_path / "a"), "--epochs", "4", "--resume"]
    assert cli_main([*args, *other]) == 2
    err = capsys.readouterr().err
    assert "pass --resume to continue it" in err and "was made with" in err
    # a held-out SROCC under the floor the user set is a breached threshold
    floor = ["--output", str(tmp_path / "a"), "--epochs", "3", "--resume", "--min-srocc", "1.5"]
    assert cli_main([*args, *floor]) == 1
    assert "below --min-srocc 1.5" in capsys.readouterr().err


def test_evaluate_command_reports_per_type(tiny_set, weights_dir, tmp_path, capsys):
    code = cli_main(
        [
            "evaluate",
            "--manifest",
            str(tiny_set),
            "--weights",
            str(weights_dir / "wadiqam-fr.safetensors"),
            "--format",
            "json",
            "--predictions",
            str(tmp_path / "p.parquet"),
        ]
    )
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    entry = report["datasets"]["synthetic-weak-v1"]
    assert entry["images"] == 40 and -1 <= entry["srocc"] <= 1 and entry["krocc"] is not None
    assert set(report["distortions"]["synthetic-weak-v1"]) == {"gaussian_blur", "white_noise"}
    assert pd.read_parquet(tmp_path / "p.parquet")["prediction"].notna().all()


def submit_train(run: Path, manifest: Path, *extra: str) -> list[str]:
    exe = Path(sys.executable).with_name("spark-submit")
    return [
        str(exe),
        "--master",
        "local[2]",
        "--conf",
        "spark.ui.enabled=false",
        str(JOBS / "train.py"),
        "--manifest",
        str(manifest),
        "--variant",
        "wadiqam-fr",
        "--epochs",
        "3",
        "--num-processes",
        "2",
        "--output",
        str(run),
        *TINY,
        *extra,
    ]


def spark_env() -> dict[str, str]:
    return {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}


@pytest.mark.spark
@pytest.mark.slow
def test_spark_submit_trains_with_two_ddp_processes_and_resumes_after_kill(tiny_set, tmp_path):
    whole = tmp_path / "whole"
    done = subprocess.run(
        submit_train(whole, tiny_set), capture_output=True, text=True, env=spark_env(), timeout=600
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    log = done.stdout + done.stderr
    assert "Started local training with 2 processes" in log
    assert "prepared {'train': 20, 'val': 10, 'test': 10}" in done.stdout
    assert [e["epoch"] for e in epochs(whole)] == [1, 2, 3]
    assert all(e["images"] == e["steps"] * 2 * 2 for e in epochs(whole))  # 2 ranks x 2 images
    assert len(list((whole / "data/train").glob("*.parquet"))) >= 2  # a row group per shard
    _, meta = load_weights(whole / "model.safetensors")
    assert meta.variant == "wadiqam-fr" and "num-processes" in meta.source

    # the same run, killed (SIGKILL to spark-submit, the driver and both trainers) after its
    # first checkpoint, then resumed: it ends with the same weights and the same epoch log
    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        submit_train(killed, tiny_set),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=spark_env(),
        start_new_session=True,
    )
    deadline = time.monotonic() + 300
    while not (killed / "checkpoints/epoch-00001.pt").exists():
        assert proc.poll() is None and time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    assert not (killed / "model.safetensors").exists()
    resumed = subprocess.run(
        submit_train(killed, tiny_set, "--resume"),
        capture_output=True,
        text=True,
        env=spark_env(),
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert "resuming from epoch-0000" in resumed.stdout
    assert "prepared" not in resumed.stdout  # the examples were reused, not fetched again
    assert epochs(killed) == epochs(whole)
    assert same_weights(killed / "model.safetensors", whole / "model.safetensors")
