"""Nothing lost, nothing silent: the data-safety and error contracts, at the lowest level that
shows each (outputs never replace inputs or foreign folders, weights checked in full, every row
scored or failed with a code, bounded reads and memory, faithful listings, usability traps)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import weakref
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file, save_file

from deepiqa_core import Scorer, WeightsError, WeightsMeta, load_weights, read_meta, save_weights
from deepiqa_core.batch import BatchConfig, BatchScorer, ImageRow
from deepiqa_core.cli import main as cli_main
from deepiqa_core.defaults import default_weights
from deepiqa_core.errors import ROW_ERROR_CODES, ReadTimeoutError, UsageError
from deepiqa_core.exits import EXIT_CODE_MEANINGS
from deepiqa_core.imaging import decode_in_order
from deepiqa_core.listing import list_images
from deepiqa_core.outputs import MARKER, check_replaceable, check_separate, marker_text
from deepiqa_core.sources import read_bytes, reset_s3_client

from .conftest import encode, make_image, non_utf8_library, trained_like

ROOT = Path(__file__).resolve().parents[1]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli_main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# an output is never an input, and only deepiqa outputs are ever replaced


def test_outputs_never_overlap_inputs(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for output in (photos, photos / "out", tmp_path):  # is, inside, contains
        with pytest.raises(UsageError, match="overlaps the input"):
            check_separate(output, [str(photos)])
    with pytest.raises(UsageError, match="overlaps"):
        check_separate(photos / "sub", [str(photos / "*.jpg")])  # a glob's folder
    check_separate(tmp_path / "elsewhere", [str(photos), "s3://bucket/photos", None])


def test_only_folders_with_deepiqa_s_marker_are_replaceable(tmp_path):
    user = tmp_path / "user"
    user.mkdir()
    (user / "notes.txt").write_text("mine")
    with pytest.raises(UsageError, match="not a deepiqa output"):
        check_replaceable(user)
    for text in ("", "{}", "not json", '{"kind": ""}', "[1]"):  # a marker must say its kind
        (user / MARKER).write_text(text)
        with pytest.raises(UsageError, match="not a deepiqa output"):
            check_replaceable(user)
    (user / MARKER).write_text(marker_text("score"))
    check_replaceable(user)
    # names other tools write too prove nothing (they once did: a folder holding checkpoints/
    # or metrics.jsonl, or _COMPLETE + summary.json, was replaced with the user's files in it)
    for sign in (["checkpoints/epoch=99.ckpt"], ["metrics.jsonl"], ["_COMPLETE", "summary.json"]):
        folder = tmp_path / sign[0].replace("/", "_")
        for name in sign:
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text("w")
        (folder / "notes.txt").write_text("n")
        with pytest.raises(UsageError, match="not a deepiqa output"):
            check_replaceable(folder)


def test_cli_never_writes_over_an_input_image(capsys, tmp_path):
    image = tmp_path / "a.png"
    image.write_bytes(encode(make_image(64, 64)))
    before = image.read_bytes()
    code, _, err = run(capsys, "score", str(image), "--output", str(image))
    assert code == 2 and "one of the inputs" in err and image.read_bytes() == before


def test_cli_output_is_never_an_input_or_a_file_deepiqa_did_not_write(
    capsys, tmp_path, weights_dir
):
    """Checked before any scoring: the weights, the manifest, a reference, an unrelated file,
    a folder, a missing folder, an empty name; deepiqa's own earlier output is replaced."""
    folder = tmp_path / "load"
    folder.mkdir()
    for i in range(2):
        (folder / f"{i}.png").write_bytes(encode(make_image(64, 64, seed=i)))
    weights = tmp_path / "my.safetensors"
    weights.write_bytes((weights_dir / "wadiqam-nr.safetensors").read_bytes())
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"uri\n{folder / '0.png'}\n")
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    kept = {p: p.read_bytes() for p in (weights, manifest, notes)}
    w = ["--weights", str(weights)]
    cases = {
        "one of the inputs": [str(folder), *w, "--output", str(weights), "--format", "csv"],
        "inputs": [str(manifest), *w, "--output", str(manifest)],
        "did not write it": [str(folder), *w, "--output", str(notes)],
        "is a folder": [str(folder), *w, "--output", str(tmp_path)],
        "does not exist": [str(folder), *w, "--output", str(tmp_path / "nope" / "s.csv")],
        "needs a file path": [str(folder), *w, "--output", ""],
        "a map is a picture": [str(folder / "0.png"), *w, "--map", str(notes)],
        "deepiqa did not write": [str(folder / "0.png"), *w, "--map", str(folder / "1.png")],
    }
    for message, argv in cases.items():
        code, out, err = run(capsys, "score", *argv)
        assert code == 2 and message in err and "Traceback" not in err, message
        assert not out, message  # refused before scoring: nothing printed
    assert {p: p.read_bytes() for p in kept} == kept
    for name in ("s.csv", "s.json", "s.txt"):  # deepiqa's own result: rewritten
        target = tmp_path / name
        assert run(capsys, "score", str(folder), *w, "--output", str(target))[0] == 0
        first = target.read_text()
        assert run(capsys, "score", str(folder), *w, "--output", str(target))[0] == 0
        assert target.read_text() == first
    target = tmp_path / "map.png"
    for _ in range(2):  # a map deepiqa drew is replaced by the next one
        assert run(capsys, "score", str(folder / "0.png"), *w, "--map", str(target))[0] == 0


def test_training_overwrite_refuses_a_folder_it_did_not_make(capsys, tmp_path):
    folder = tmp_path / "precious"
    folder.mkdir()
    (folder / "thesis.tex").write_text("years of work")
    manifest = tmp_path / "m.csv"
    manifest.write_text("id,uri,ref_uri,ref_id,score,score_direction,score_min,score_max,dataset\n")
    args = ["train", "--manifest", str(manifest), "--output", str(folder), "--overwrite"]
    code, _, err = run(capsys, *args)
    assert code in (2, 3) and (folder / "thesis.tex").read_text() == "years of work"
    (folder / "checkpoints").mkdir()  # another trainer's names in the same folder
    (folder / "checkpoints" / "epoch=99.ckpt").write_text("w")
    (folder / "metrics.jsonl").write_text("{}")
    code, _, err = run(capsys, *args)
    assert code == 2 and "not a deepiqa output" in err
    assert (folder / "thesis.tex").read_text() == "years of work"
    assert (folder / "checkpoints" / "epoch=99.ckpt").read_text() == "w"


# weights are checked in full at load; no row is ever neither scored nor failed


@pytest.fixture
def good_weights(tmp_path) -> Path:
    path = tmp_path / "good.safetensors"
    meta = WeightsMeta(
        variant="wadiqam-nr", score_range=[0.0, 100.0], score_direction="higher_better"
    )
    save_weights(trained_like("wadiqam-nr"), path, meta)
    return path


def _rewrite(src: Path, dst: Path, change) -> Path:
    """``src`` with its tensors changed by ``change`` and its deepiqa metadata kept."""
    from safetensors import safe_open

    with safe_open(str(src), "pt") as f:
        metadata = f.metadata()
    tensors = load_file(str(src))
    change(tensors)
    save_file(tensors, str(dst), metadata=metadata)
    return dst


def test_nan_bit_flipped_truncated_and_mislabelled_weights_are_refused(good_weights, tmp_path):
    load_weights(good_weights)
    name = "features.0.weight"

    def nan(t):
        t[name][0, 0, 0, 0] = float("nan")

    def flip(t):  # one exponent bit: x * 2**64
        t["quality.3.weight"][0, :] *= 2.0**64

    with pytest.raises(WeightsError, match="NaN or infinite"):
        load_weights(_rewrite(good_weights, tmp_path / "nan.safetensors", nan))
    with pytest.raises(WeightsError, match="far outside its declared range"):
        load_weights(_rewrite(good_weights, tmp_path / "flip.safetensors", flip))
    data = good_weights.read_bytes()
    with pytest.raises(WeightsError):
        load_weights(data[: len(data) - 1000])
    fr = tmp_path / "fr.safetensors"
    save_weights(trained_like("wadiqam-fr"), fr, WeightsMeta(variant="wadiqam-fr"))
    mislabelled = data_with_meta(fr, WeightsMeta(variant="wadiqam-nr"))
    with pytest.raises(WeightsError, match="do not fit wadiqam-nr"):
        load_weights(mislabelled)


def _with_meta_json(src: Path, dst: Path, change) -> Path:
    """``src`` with its tensors kept and its deepiqa metadata JSON changed by ``change``."""
    from safetensors import safe_open

    with safe_open(str(src), "pt") as f:
        record = json.loads(f.metadata()["deepiqa"])
    change(record)
    save_file(load_file(str(src)), str(dst), metadata={"deepiqa": json.dumps(record)})
    return dst


def test_a_flipped_bit_in_a_calibrated_model_is_refused_not_squashed(tmp_path, capsys):
    """The shipped NR default with one exponent bit flipped in its final quality bias (fp16
    57.9 -> 14824) once scored every image 100.0, exit 0: the probe read the calibrated score,
    which is always in 0..100. The raw output is checked now."""
    shipped = default_weights(False)
    load_weights(shipped)

    def flip(t):
        bias = t["quality.3.bias"]
        bits = bias.view(torch.int16)
        bits ^= 1 << 13  # an exponent bit of fp16
        assert float(bias[0]) > 10_000

    flipped = _rewrite(shipped, tmp_path / "flipped.safetensors", flip)
    with pytest.raises(WeightsError, match="far outside its calibration's raw scale"):
        load_weights(flipped)
    image = tmp_path / "a.png"
    image.write_bytes(encode(make_image(64, 64)))
    code, out, err = run(capsys, "score", str(image), "--weights", str(flipped))
    assert code == 3 and "corrupt weights" in err and not out

    def constant(t):  # the output no longer depends on the image
        t["quality.3.weight"].zero_()

    with pytest.raises(WeightsError, match="no longer depends on the image"):
        load_weights(_rewrite(shipped, tmp_path / "constant.safetensors", constant))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("calibration.raw", [float("-inf"), 88.0, float("inf")], "finite"),
        ("calibration.version", "cal-v9", "unknown calibration version"),
        ("calibration", "abc", "unreadable calibration"),
        ("epsilon", -1e-6, "epsilon"),
        ("epsilon", "x", "epsilon"),
        ("score_range", "abc", "score_range"),
        ("score_range", [100, 0], "score_range"),
        ("score_range", [0, float("nan")], "score_range"),
    ],
)
def test_metadata_that_cannot_be_right_is_refused(tmp_path, field, value, message):
    def change(record):
        if "." in field:
            outer, inner = field.split(".")
            if inner == "raw":
                value[1] = record[outer]["raw"][1]
                record[outer]["raw"] = value + record[outer]["raw"][3:]
                record[outer]["score"] = record[outer]["score"][: len(record[outer]["raw"])]
            else:
                record[outer][inner] = value
        else:
            record[field] = value

    bad = _with_meta_json(default_weights(False), tmp_path / "bad.safetensors", change)
    with pytest.raises(WeightsError, match=message):
        load_weights(bad)


def test_a_huge_or_garbage_weights_file_is_refused_from_its_first_bytes(tmp_path, capsys):
    huge = tmp_path / "video.safetensors"
    with open(huge, "wb") as f:
        f.write(b"\x00\x00\x00\x00\x00\x01\x00\x00")  # 2**40-byte header
        f.truncate(3 * 2**30)  # sparse: 3 GB that are never read
    with pytest.raises(WeightsError, match="more than any DeepIQA weights file"):
        load_weights(huge)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\xff" * 8 + b"x" * 1000)
    for path in (garbage, huge):
        with pytest.raises(WeightsError):
            read_meta(path)
    image = tmp_path / "a.png"
    image.write_bytes(encode(make_image(64, 64)))
    code, _, err = run(capsys, "score", str(image), "--weights", str(huge))
    assert code == 3 and "more than any DeepIQA weights file" in err and "Traceback" not in err


def data_with_meta(path: Path, meta: WeightsMeta) -> bytes:
    tensors = load_file(str(path))
    out = path.with_suffix(".relabelled")
    save_file(tensors, str(out), metadata={"deepiqa": meta.to_json()})
    return out.read_bytes()


def test_non_finite_scores_get_an_error_code_and_out_of_range_scores_a_flag(tmp_path):
    images = [encode(make_image(64, 64, seed=s)) for s in range(2)]
    rows = [ImageRow(id=str(i), image=b) for i, b in enumerate(images)]
    broken = trained_like("wadiqam-nr")
    with torch.no_grad():
        broken.quality_output.bias.fill_(float("nan"))
    batch = BatchScorer(Scorer(broken, device="cpu"), "m", "0" * 64, BatchConfig())
    assert [r.error_code for r in batch.score_rows(rows)] == ["non_finite_score"] * 2
    shifted = trained_like("wadiqam-nr")
    with torch.no_grad():
        shifted.quality_output.bias.fill_(500.0)  # every score far above 0..100
    scorer = Scorer(shifted, device="cpu")
    results = BatchScorer(scorer, "m", "0" * 64, BatchConfig(), [0.0, 100.0]).score_rows(rows)
    assert all(r.score > 100 and r.in_range is False and r.error_code is None for r in results)
    normal = BatchScorer(
        Scorer(trained_like("wadiqam-nr"), device="cpu"), "m", "0", BatchConfig(), [-1e9, 1e9]
    )
    assert all(r.in_range is True for r in normal.score_rows(rows))
    no_range = BatchScorer(scorer, "m", "0", BatchConfig()).score_rows(rows)
    assert all(r.in_range is None and r.score is not None for r in no_range)


# a missing or empty reference source is a usage error; the exit-code table


def test_missing_or_empty_references_are_usage_errors(capsys, tmp_path, weights_dir):
    dist = tmp_path / "dist"
    dist.mkdir()
    (dist / "a__x.png").write_bytes(encode(make_image(64, 64)))
    (tmp_path / "empty").mkdir()
    fr = str(weights_dir / "wadiqam-fr.safetensors")
    for ref in (tmp_path / "nope", tmp_path / "empty"):
        code, _, err = run(capsys, "score", str(dist), "--ref", str(ref), "--weights", fr)
        assert code == 2 and ("does not exist" in err or "no references found" in err)


def test_corrupt_or_missing_manifests_and_weights_are_not_tracebacks(capsys, tmp_path, weights_dir):
    nr = str(weights_dir / "wadiqam-nr.safetensors")
    corrupt = tmp_path / "m.parquet"
    corrupt.write_bytes(b"PAR1 this is not parquet PAR1")
    code, _, err = run(capsys, "score", str(corrupt), "--weights", nr)
    assert code == 3 and "cannot read the manifest" in err and "Traceback" not in err
    code, _, err = run(capsys, "score", str(tmp_path / "gone.parquet"), "--weights", nr)
    assert code == 2 and "does not exist" in err
    image = tmp_path / "a.png"
    image.write_bytes(encode(make_image(64, 64)))
    truncated = tmp_path / "t.safetensors"
    truncated.write_bytes(Path(nr).read_bytes()[:-4096])
    code, _, err = run(capsys, "score", str(image), "--weights", str(truncated))
    assert code == 3 and "Traceback" not in err


# reads never hang and have a size cap; URIs that cannot be read are named


@pytest.fixture
def stalling_endpoint(monkeypatch, s3_server):
    """An HTTP endpoint on 127.0.0.1 that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{server.getsockname()[1]}")
    reset_s3_client()
    yield
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()
    monkeypatch.undo()
    reset_s3_client()


def test_a_stalled_read_becomes_read_timeout(stalling_endpoint):
    with pytest.raises(ReadTimeoutError) as err:
        read_bytes("s3://media/stuck.jpg", timeout=1.0)
    assert err.value.code == "read_timeout"


def test_rows_for_unreadable_uris_fifos_and_oversized_files(tmp_path):
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    big = tmp_path / "big.png"
    big.write_bytes(encode(make_image(64, 64)))
    rows = [
        ImageRow("fifo", uri=str(fifo)),
        ImageRow("big", uri=str(big)),
        ImageRow("bytes", image=encode(make_image(64, 64, seed=1))),
        ImageRow("none"),
        ImageRow("empty", uri=""),
        ImageRow("gs", uri="gs://bucket/x.jpg"),
        ImageRow("hdfs", uri="hdfs:///x.jpg"),
        ImageRow("http", uri="http://example.com/x.jpg"),
        ImageRow("host", uri="file://otherhost/x.jpg"),
    ]
    config = BatchConfig(max_bytes=len(big.read_bytes()) - 1)
    batch = BatchScorer(Scorer(trained_like("wadiqam-nr"), device="cpu"), "m", "0", config)
    results = batch.score_rows(rows)
    codes = {row.id: r.error_code for row, r in zip(rows, results, strict=True)}
    assert codes == {
        "fifo": "read_error",
        "big": "too_large",
        "bytes": "too_large",
        "none": "bad_input",
        "empty": "bad_input",
        "gs": "unsupported_uri",
        "hdfs": "unsupported_uri",
        "http": "unsupported_uri",
        "host": "unsupported_uri",
    }
    assert "gs://bucket/x.jpg" in results[5].error_message  # named as given, not mangled


# decoded images held ahead of the network are bounded by bytes, not by count


def test_read_ahead_is_bounded_by_a_byte_budget():
    size = 8 * 2**20
    live: set[int] = set()
    peak = [0]
    lock = threading.Lock()

    def load(i: int, admit) -> np.ndarray:
        admit(size)  # the size from the header, before anything is decoded
        array = np.ones(size, np.uint8)
        with lock:
            live.add(id(array))
            peak[0] = max(peak[0], len(live))
        weakref.finalize(array, live.discard, id(array))
        return array

    def consume(budget: int | None) -> int:
        peak[0] = 0
        for i, array in decode_in_order(range(24), load, 4, max_pending_bytes=budget):
            assert array.nbytes == size
            del array
            # a consumer slower than the decoders, as the network is; the long first pause
            # lets the decoders fill their window even on a loaded machine (once flaky here)
            time.sleep(0.5 if i == 0 else 0.02)
        return peak[0]

    unbounded = consume(None)
    bounded = consume(3 * size)
    assert unbounded >= 8  # 4 x workers decoded ahead
    assert bounded <= 4  # the budget (3, admitted before decoding) + the one being used


def test_decoded_memory_keeps_to_the_decode_budget_whatever_the_workers(tmp_path):
    """16 PNGs of 2000x1990 (12 MB decoded each) with 8 decode workers:
    once, the first 8 decodes started before any size was known (16 PNGs of 10000x9990 took
    6.85 GB with 8 workers). Each decode is admitted from its header now, so the decoded bytes
    held ahead of the network stay within the budget, or one image when it alone is larger."""
    big = encode(np.tile(make_image(199, 200), (10, 10, 1)))  # flat grey: denormals, slow
    rows = [ImageRow(f"{i}", image=big) for i in range(16)]
    one = 1990 * 2000 * 3
    scorer = Scorer(trained_like("wadiqam-nr"), device="cpu", stride=500)  # 16 patches each
    peaks = {}
    for budget_mb in (30, 16, 1):
        config = BatchConfig(decode_workers=8, decode_budget_mb=budget_mb, stride=500)
        batch = BatchScorer(scorer, "m", "0", config)
        results = batch.score_rows(rows)
        assert all(r.score is not None for r in results)
        peaks[budget_mb] = batch.decode_peak_bytes
    print({mb: round(p / 2**20, 1) for mb, p in peaks.items()})
    assert one < peaks[30] <= 30 * 2**20  # two fit in 30 MB, and two at most
    assert peaks[16] == peaks[1] == one  # one at a time: the budget holds one (or none) image


def test_images_with_too_many_patches_are_refused_from_the_header(tmp_path):
    strip = encode(np.zeros((32, 32 * 400, 3), np.uint8))
    config = BatchConfig(max_patches=100)
    batch = BatchScorer(Scorer(trained_like("wadiqam-nr"), device="cpu"), "m", "0", config)
    result = batch.score_rows([ImageRow("strip", image=strip)])[0]
    assert result.error_code == "too_many_patches" and "400 patches" in result.error_message


# a failed reference says so


def test_reference_errors_name_the_reference(tmp_path):
    dist = encode(make_image(64, 64))
    corrupt = tmp_path / "ref.png"
    corrupt.write_bytes(b"\x89PNG broken")
    batch = BatchScorer(Scorer(trained_like("wadiqam-fr"), device="cpu"), "m", "0", BatchConfig())
    rows = [
        ImageRow("a", image=dist, ref_uri=str(corrupt)),
        ImageRow("b", image=dist, ref_uri=str(tmp_path / "gone.png")),
        ImageRow("c", image=b"junk", ref_uri=str(corrupt)),
    ]
    a, b, c = batch.score_rows(rows)
    assert a.error_code == "ref_decode_error" and str(corrupt) in a.error_message
    assert b.error_code == "ref_missing"
    assert c.error_code == "decode_error"  # the distorted image's own failure comes first


# nothing named like an image is dropped from a listing


def test_listing_keeps_broken_links_loops_and_odd_entries(tmp_path):
    (tmp_path / "ok.png").write_bytes(encode(make_image(64, 64)))
    (tmp_path / "dir.jpg").mkdir()
    (tmp_path / "dangling.png").symlink_to(tmp_path / "nowhere.png")
    (tmp_path / "loop.png").symlink_to(tmp_path / "loop.png")
    listed = [Path(p).name for p in list_images(str(tmp_path))]
    assert listed == ["dangling.png", "dir.jpg", "loop.png", "ok.png"]
    rows = [ImageRow(p, uri=p) for p in list_images(str(tmp_path))]
    batch = BatchScorer(Scorer(trained_like("wadiqam-nr"), device="cpu"), "m", "0", BatchConfig())
    codes = [r.error_code for r in batch.score_rows(rows)]
    assert codes == ["missing", "read_error", "read_error", None]


# usability traps


def test_names_that_are_no_utf8_are_listed_faithfully_and_scored(capsys, tmp_path):
    folder = non_utf8_library(tmp_path / "load")
    odd = f"file://{urllib.parse.quote(os.fsencode(folder))}/caf%E9.png"
    assert list_images(str(folder)) == sorted([odd, str(folder / "plain.png")])
    assert (
        read_bytes(odd)
        == Path(
            os.path.join(os.fsencode(folder), b"caf\xe9.png").decode(errors="surrogateescape")
        ).read_bytes()
    )
    out = tmp_path / "s.csv"
    code, _, err = run(capsys, "score", str(folder), "--output", str(out))
    assert code == 0, err
    rows = pd.read_csv(out)
    assert set(rows["path"]) == {odd, str(folder / "plain.png")}
    assert rows["score"].notna().all() and rows["error_code"].isna().all()


def test_output_format_follows_the_file_suffix(capsys, tmp_path):
    image = tmp_path / "a.png"
    image.write_bytes(encode(make_image(64, 64)))
    assert run(capsys, "score", str(image), "--output", str(tmp_path / "s.csv"))[0] == 0
    assert (tmp_path / "s.csv").read_text().startswith("path,score,num_patches,in_range")
    assert run(capsys, "score", str(image), "--output", str(tmp_path / "s.json"))[0] == 0
    assert json.loads((tmp_path / "s.json").read_text())[0]["in_range"] is True


def test_a_corrupt_exif_block_prints_no_warning(tmp_path):
    from PIL import Image

    # an IFD that promises 5 entries and holds 1
    exif = b"Exif\x00\x00II*\x00\x08\x00\x00\x00\x05\x00"
    exif += b"\x12\x01\x03\x00\x01\x00\x00\x00\x06\x00\x00\x00"
    path = tmp_path / "exif.jpg"
    Image.fromarray(make_image(64, 64)).save(path, "JPEG", exif=exif)
    code = (
        f"from deepiqa_core import read_image; read_image({str(path)!r}); read_image({str(path)!r})"
    )
    done = subprocess.run(
        [sys.executable, "-W", "default", "-c", code], capture_output=True, text=True
    )
    assert done.returncode == 0 and done.stderr == ""
    probe = "import warnings; from PIL import Image; warnings.simplefilter('default'); "
    probe += "Image.open(%r).getexif()"
    raw = subprocess.run([sys.executable, "-c", probe % str(path)], capture_output=True, text=True)
    assert "EXIF" in raw.stderr  # the file really has a corrupt EXIF block


def test_the_documented_spark_submit_works_in_a_fresh_shell():
    venv = ROOT / ".venv" / "bin" / "activate"
    if not venv.exists():
        pytest.skip("the README's set-up makes .venv; this checkout was installed otherwise")
    script = f"source {venv} && spark-submit {ROOT / 'jobs' / 'score.py'} --help"
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp")}
    done = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "exit codes:" in done.stdout


# the tables: README, --help and the code say the same


def test_readme_tables_are_the_codes_tables():
    readme = (ROOT / "README.md").read_text()
    for code, meaning in EXIT_CODE_MEANINGS.items():
        assert f"| {int(code)} | {meaning} |" in readme
    for code, meaning in ROW_ERROR_CODES.items():
        assert f"| `{code}` | {meaning} |" in readme
    frame = pd.DataFrame(list(ROW_ERROR_CODES.items()))
    assert frame[0].is_unique


def test_help_and_schemes_say_what_is_really_accepted(capsys):
    """`deepiqa audit --help` once offered --max-error-rate, which the audit refuses; a gs://
    input was said not to exist."""
    with pytest.raises(SystemExit):
        cli_main(["audit", "--help"])
    assert "--max-error-rate MAX" not in capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli_main(["score", "--help"])
    assert "--max-error-rate MAX" in capsys.readouterr().out
    code, _, err = run(capsys, "score", "gs://bucket/x/")
    assert code == 2 and "gs:// is not listed here" in err and "does not exist" not in err
