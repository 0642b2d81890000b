"""Shared fixtures: small deterministic images and weights files the tests make themselves."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from deepiqa_core import DeepIQA, WeightsMeta, save_weights


def make_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth-plus-texture RGB image (not pure noise, so distortions change it visibly)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack(
        [128 + 100 * np.sin(xx / (7 + c) + yy / (11 + 2 * c) + seed) for c in range(3)], axis=-1
    )
    return np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)


def encode(array: np.ndarray, fmt: str = "PNG", **kwargs: object) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def trained_like(variant: str, seed: int = 0) -> DeepIQA:
    """A randomly initialised network whose outputs vary between patches and images.

    PyTorch's default init shrinks activations layer by layer, so ten convs later every image
    scores the same and tests of pooling and batching would pass vacuously. He-initialised
    layers keep the signal; a scaled quality head puts scores on a 0-100-like scale (where
    float32 rounding is largest); a positive weight-head bias keeps alphas above epsilon.
    """
    torch.manual_seed(seed)
    model = DeepIQA(variant)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.Conv2d | torch.nn.Linear):
                torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                m.bias.zero_()
        model.quality_output.weight.mul_(100.0)  # scores spread over tens, like DMOS
        model.quality_output.bias.fill_(50.0)
        if model.weight_output is not None:
            model.weight_output.bias.fill_(1.0)
    return model.eval()


@pytest.fixture(scope="session")
def weights_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One weights file per variant, written once per test session."""
    folder = tmp_path_factory.mktemp("weights")
    for i, variant in enumerate(("diqam-nr", "wadiqam-nr", "diqam-fr", "wadiqam-fr")):
        meta = WeightsMeta(variant=variant, score_direction="higher_better", training_data="test")
        save_weights(trained_like(variant, seed=i), folder / f"{variant}.safetensors", meta)
    return folder


def non_utf8_library(folder: Path) -> Path:
    """A folder with one image whose name is no UTF-8 (Latin-1 "café.png", as old NAS shares
    and zip extractions leave them) and one plain name."""
    folder.mkdir(parents=True, exist_ok=True)
    raw = os.path.join(os.fsencode(folder), b"caf\xe9.png")
    with open(raw, "wb") as f:
        f.write(encode(make_image(64, 64, seed=1)))
    (folder / "plain.png").write_bytes(encode(make_image(64, 64, seed=2)))
    return folder


JOBS = Path(__file__).resolve().parents[1] / "jobs"


def spark_submit(master: str, *args: str, cwd: Path):
    """Run the real spark-submit of this environment (its Python for driver and workers)."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}
    exe = Path(sys.executable).with_name("spark-submit")
    return subprocess.run(
        [str(exe), "--master", master, "--conf", "spark.ui.enabled=false", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=600,
    )


@pytest.fixture(scope="session")
def s3_server() -> dict[str, str]:
    """moto's S3 over real HTTP on 127.0.0.1, with IAM enforced.

    The first few requests are unauthenticated (moto's INITIAL_NO_AUTH_ACTION_COUNT) and make a
    bucket ``media`` and a user ``scorer`` that may do anything in it except read ``secret/*``;
    the process's AWS_* settings become that user's, so the driver and Spark's Python workers
    (started later, inheriting them) read S3 as it, and ``secret/*`` gives AccessDenied.
    """
    import json
    import os

    setup_actions = 4
    os.environ["INITIAL_NO_AUTH_ACTION_COUNT"] = str(setup_actions)
    import boto3
    from moto import settings
    from moto.server import ThreadedMotoServer

    settings.INITIAL_NO_AUTH_ACTION_COUNT = setup_actions
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    anon = {
        "endpoint_url": url,
        "region_name": "us-east-1",
        "aws_access_key_id": "setup",
        "aws_secret_access_key": "setup",
    }
    boto3.client("s3", **anon).create_bucket(Bucket="media")
    iam = boto3.client("iam", **anon)
    iam.create_user(UserName="scorer")
    key = iam.create_access_key(UserName="scorer")["AccessKey"]
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "s3:*",
                "Resource": ["arn:aws:s3:::media", "arn:aws:s3:::media/*"],
            },
            {"Effect": "Deny", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::media/secret/*"},
        ],
    }
    iam.put_user_policy(UserName="scorer", PolicyName="scoring", PolicyDocument=json.dumps(policy))
    os.environ.update(
        {
            "AWS_ENDPOINT_URL": url,
            "AWS_ACCESS_KEY_ID": key["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"],
            "AWS_DEFAULT_REGION": "us-east-1",
        }
    )
    os.environ.pop("AWS_PROFILE", None)
    from deepiqa_core.sources import reset_s3_client

    reset_s3_client()
    yield {"url": url, "bucket": "media"}
    server.stop()


@pytest.fixture
def s3_listing_prefixes(s3_server):
    """moto's server, with IAM enforced, rejects the signature of any list request whose
    parameters contain "/" (getmoto/moto#5948; real S3 does not): IAM is off for these tests."""
    from moto.core.authorization import disable_iam_authentication

    with disable_iam_authentication():
        yield


@pytest.fixture(scope="session")
def spark(s3_server):
    """One local[2] SparkSession for the whole test run (after the S3 settings exist).

    Executors import deepiqa_core as installed; nothing else needs to be on their path."""
    import os
    import sys

    os.environ["PYSPARK_PYTHON"] = sys.executable
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("deepiqa-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.log.level", "WARN")
        .getOrCreate()
    )
    yield session
    session.stop()


def load_job(name: str):
    """A ``jobs/<name>.py`` entry point as a module (its ``main(argv, spark=...)``)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"deepiqa_job_{name}", JOBS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
