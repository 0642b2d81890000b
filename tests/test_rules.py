"""The one-rule-per-decision modules: pairing, devices, exit codes, seeds, defaults."""

from __future__ import annotations

import argparse
import hashlib

import numpy as np
import pytest
import torch

from deepiqa_core.devices import resolve_device, wants_gpu
from deepiqa_core.errors import ImageDecodeError, OutputExistsError, UsageError
from deepiqa_core.exits import ExitCode, run_entry, threshold_code
from deepiqa_core.options import (
    InputSpec,
    ScoringOptions,
    add_input_arguments,
    add_scoring_arguments,
    input_spec,
    scoring_options,
)
from deepiqa_core.pairing import file_stem, pair_images, pair_key
from deepiqa_core.seeding import derive_seed, rng
from deepiqa_core.training.synthetic import level_rng

# name -> the reference stem it pairs with under the default rule (None: unpaired)
TRICKY_NAMES = {
    "cat__jpeg_q10.jpg": "cat",
    "cat.png": "cat",
    "x__weird__y.png": "x",
    "__lead.png": "__lead",
    "trail__.png": "trail",
    "a.b__c.d.png": "a.b",
    "noext": "noext",
    "sub/dir/dog__blur.PNG": "dog",
    "s3://bucket/p/cat__noise.webp": "cat",
    "dir.with.dots/fish": "fish",
}


def test_default_pairing_rule_on_tricky_names():
    assert {name: pair_key(name) for name in TRICKY_NAMES} == TRICKY_NAMES
    assert file_stem("s3://b/refs/cat.v2.png") == "cat.v2"
    assert pair_key("a__b.png", r"^(.*)__") == "a" and pair_key("ab.png", r"^(.*)__") is None


def test_shared_stems_pair_with_the_smallest_uri():
    refs = ["r/cat.png", "r/cat.jpg", "q/cat.tif", "r/dog.png"]
    pairs = pair_images(["d/cat__1.png", "d/dog.png", "d/eel__2.png"], refs)
    assert pairs == [
        ("d/cat__1.png", "q/cat.tif"),
        ("d/dog.png", "r/dog.png"),
        ("d/eel__2.png", None),
    ]


def test_device_rule_without_a_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device("auto", assigned_gpu="3") == torch.device("cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("cuda:1") == torch.device("cuda:1")  # explicit: taken as given
    with pytest.raises(UsageError, match="no CUDA GPU"):
        resolve_device("cuda")
    with pytest.raises(UsageError, match="unknown device"):
        resolve_device("tpu")
    assert wants_gpu("auto", gpus_available=True) and not wants_gpu("auto", False)
    assert wants_gpu("cuda", False) and not wants_gpu("cpu", True)  # launchers: at its word


def test_device_rule_order_with_gpus(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setenv("LOCAL_RANK", "2")
    assert resolve_device("auto", assigned_gpu="5") == torch.device("cuda:5")  # Spark's first
    assert resolve_device("auto") == torch.device("cuda:2")  # then the DDP rank's
    assert resolve_device("cuda") == torch.device("cuda:2")
    monkeypatch.delenv("LOCAL_RANK")
    assert resolve_device("auto") == torch.device("cuda:0")


def test_exceptions_map_to_the_exit_code_table(capsys):
    def raising(exc: BaseException):
        def body() -> int:
            raise exc

        return body

    assert run_entry("t", lambda: 0) == ExitCode.OK
    assert run_entry("t", raising(UsageError("bad flag"))) == ExitCode.USAGE
    assert run_entry("t", raising(OutputExistsError("exists"))) == ExitCode.USAGE
    assert run_entry("t", raising(ImageDecodeError("bad weights"))) == ExitCode.FAILED
    assert run_entry("t", raising(FileNotFoundError("gone"))) == ExitCode.FAILED
    err = capsys.readouterr().err
    assert "t: bad flag" in err and "Traceback" not in err
    assert run_entry("t", raising(ZeroDivisionError("bug"))) == ExitCode.FAILED  # never 1
    assert "Traceback" in capsys.readouterr().err  # a bug keeps its traceback
    assert threshold_code(0, 10, 0.0) == ExitCode.OK
    assert threshold_code(1, 10, 0.0) == ExitCode.THRESHOLD
    assert threshold_code(1, 10, 0.1) == ExitCode.OK and threshold_code(2, 10, 0.1) == 1
    assert threshold_code(10, 10, None) == ExitCode.OK


def test_seeds_are_keyed_by_purpose_and_reproducible():
    assert derive_seed("crops", 0, 1, 7) == derive_seed("crops", 0, 1, 7)
    assert len({derive_seed(p, 0, 1) for p in ("crops", "shuffle", "dropout", "split")}) == 4
    assert 0 <= derive_seed("row-groups", 5, bits=32) < 2**32
    assert rng("a", 1).integers(1 << 30) == rng("a", 1).integers(1 << 30)
    # the synthetic set's stream keeps its original key, so published sets keep their pixels
    digest = hashlib.sha256(b"0/photo/jpeg/3").digest()
    before = np.random.default_rng(int.from_bytes(digest[:8], "little")).random(4)
    assert np.array_equal(level_rng(0, "photo", "jpeg", 3).random(4), before)


def test_flags_read_their_defaults_from_the_specs():
    parser = argparse.ArgumentParser()
    add_input_arguments(parser, input_help="x")
    add_scoring_arguments(parser)
    args = parser.parse_args(["photos/"])
    assert input_spec(args) == InputSpec("photos/")
    assert scoring_options(args) == ScoringOptions()
    args = parser.parse_args(["p", "--no-recursive", "--stride", "16", "--max-error-rate", "0.5"])
    assert not input_spec(args).recursive and scoring_options(args).batch.stride == 16
    for bad in (["--stride", "0"], ["--patch-budget", "0"], ["--max-error-rate", "2"]):
        with pytest.raises(SystemExit):
            parser.parse_args(["p", *bad])
    with pytest.raises(SystemExit):
        parser.parse_args(["p", "--pair-regex", "no-group"])
