"""The rules of the scripts that gather photos and train the shipped weights (their parts that
decide what the defaults are trained and judged on)."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from .conftest import encode, make_image

ROOT = Path(__file__).resolve().parents[1]


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the file executes
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def gather():
    return _script("gather_photos")


@pytest.fixture(scope="module")
def train():
    return _script("train_default_weights")


def test_licences_follow_the_last_matching_copyright_stanza(gather):
    stanzas = [
        ("*", "GPL-2+"),
        ("16.04/aitzgorri_by_A.jpg", "CC-BY-4.0"),
        ("16.04/Bridge_by_S.jpg", "CC-BY-SA-4.0"),
        ("data/*", "BSD-3-Clause"),
        ("debian/*", "Expat"),  # the packaging's own files: matches none of the photos
    ]
    assert gather.licence_for("usr/share/backgrounds/aitzgorri_by_A.jpg", stanzas) == "CC-BY-4.0"
    assert gather.licence_for("usr/share/backgrounds/Bridge_by_S.jpg", stanzas) == "CC-BY-SA-4.0"
    assert gather.licence_for("usr/share/backgrounds/other.jpg", stanzas) == "GPL-2+"
    assert gather.licence_for("usr/share/doc/x/examples/data/b.jpg", stanzas) == "BSD-3-Clause"
    assert gather.licence_for("x.jpg", []) == "unknown"


def test_photo_ids_name_the_package_and_never_hold_the_pairing_separator(gather):
    plasma = "usr/share/wallpapers/Kite/contents/images/1920x1080.jpg"
    assert gather.debian_id("plasma-workspace-wallpapers", plasma) == "plasma-Kite"
    lomiri = "usr/share/backgrounds/Painting-Colors_by__herobrine7gamer.jpg"
    assert (
        gather.debian_id("lomiri-wallpapers-20.04", lomiri)
        == "lomiri-Painting-Colors_by_herobrine7gamer"
    )


def test_copies_of_one_photo_at_other_sizes_are_kept_once_largest_first(gather, tmp_path):
    def scene(seed: int) -> Image.Image:  # photo-like: structure at every scale, not texture
        coarse = np.random.default_rng(seed).integers(0, 256, (6, 8, 3), dtype=np.uint8)
        return Image.fromarray(coarse).resize((400, 300), Image.BICUBIC)

    names = ("big", "small", "other")
    paths = {name: tmp_path / f"{name}.png" for name in names}
    scene(1).save(paths["big"])
    scene(1).resize((200, 150)).convert("L").convert("RGB").save(paths["small"])  # smaller, grey
    scene(2).save(paths["other"])
    photos = [
        gather.Photo(name, "pkg", "1", path, name, *Image.open(path).size, "CC0")
        for name, path in paths.items()
    ]
    kept = gather.distinct(photos)
    assert [p.id for p in kept] == ["big", "other"]


def test_the_split_is_by_photo_stable_and_keeps_the_named_photos(train):
    assert train.split_of("coffee") == "test" and train.split_of("rocket") == "val"
    ids = [f"photo-{i}" for i in range(2000)]
    splits = [train.split_of(p) for p in ids]
    assert splits == [train.split_of(p) for p in ids]
    for name in ("test", "val"):
        assert 0.06 < splits.count(name) / len(ids) < 0.10  # HELD_OUT_SHARE = 0.08 each
    assert train.photo_of("plasma-Kite@c1") == "plasma-Kite"


def test_training_photos_give_seeded_multi_scale_crops(train, tmp_path):
    photo = tmp_path / "astronaut.png"  # a training photo (not a named held-out one)
    image = make_image(200, 300, seed=3)
    photo.write_bytes(encode(image))
    assert train.split_of("astronaut") == "train"
    paths = train.write_contents({"astronaut": photo}, 3, 0, tmp_path / "a")
    again = train.write_contents({"astronaut": photo}, 3, 0, tmp_path / "b")
    assert [Path(p).name for p in paths] == [
        "astronaut@c0.png",
        "astronaut@c1.png",
        "astronaut@c2.png",
    ]
    arrays = [np.asarray(Image.open(p)) for p in paths]
    assert np.array_equal(arrays[0], image)  # crop 0: the whole photo
    for crop in arrays[1:]:
        short = min(crop.shape[:2])
        assert 0.35 * 200 - 1 <= short <= 0.85 * 200 and crop.shape[1] > crop.shape[0]
    assert all(
        Path(a).read_bytes() == Path(b).read_bytes() for a, b in zip(paths, again, strict=True)
    )
    held_out = tmp_path / "coffee.png"
    held_out.write_bytes(encode(image))
    assert len(train.write_contents({"coffee": held_out}, 3, 0, tmp_path / "c")) == 1


@pytest.fixture(scope="module")
def nr_trainer():
    return _script("train_nr_default")


def test_trunk_from_takes_convs_1_to_8_and_keeps_the_rest(nr_trainer, tmp_path):
    """--trunk-from: the lower convs are the donor's, everything above is --init's, so the kept
    lower outputs, the fit and the written weights all see one model."""
    import torch

    from deepiqa_core import save_weights
    from deepiqa_core.training.trunk_cache import SPLIT
    from deepiqa_core.weights import WeightsMeta

    from .conftest import trained_like

    init, donor = trained_like("wadiqam-nr", seed=1), trained_like("wadiqam-fr", seed=2)
    for name, model in (("init", init), ("donor", donor)):
        meta = WeightsMeta(variant=model.variant.name, score_direction="higher_better")
        save_weights(model, tmp_path / f"{name}.safetensors", meta)
    model, _ = nr_trainer.initial_model(
        tmp_path / "init.safetensors", tmp_path / "donor.safetensors"
    )
    lower, upper = model.features[:SPLIT], model.features[SPLIT:]
    for mine, theirs in zip(lower.parameters(), donor.features[:SPLIT].parameters(), strict=True):
        assert torch.equal(mine, theirs)
    for mine, theirs in zip(upper.parameters(), init.features[SPLIT:].parameters(), strict=True):
        assert torch.equal(mine, theirs)
    assert torch.equal(model.quality[0].weight, init.quality[0].weight)
    same, _ = nr_trainer.initial_model(tmp_path / "init.safetensors", None)
    assert all(torch.equal(a, b) for a, b in zip(same.parameters(), init.parameters(), strict=True))


def test_reinit_top_resets_convs_9_10_and_heads_only(nr_trainer):
    import torch

    from deepiqa_core.training.trunk_cache import SPLIT

    from .conftest import trained_like

    model = trained_like("wadiqam-nr", seed=3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    nr_trainer.reinit_top(model, seed=0)
    after = model.state_dict()
    lower = {f"features.{i}." for i in range(SPLIT)}
    for key, value in after.items():
        if key == "quality.3.bias":  # set to the label's middle, checked below
            continue
        kept = any(key.startswith(p) for p in lower)
        assert torch.equal(value, before[key]) == kept, key
    assert float(model.quality_output.bias.detach()) == 50.0
    nr_trainer.set_dropout(model, 0.0)
    assert [m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)] == [0.0, 0.0]


def test_rung_sampling_keeps_the_pristine_rung_and_whole_kinds_weighted(nr_trainer):
    """--kinds-per-step K: per content, the pristine rung and every level of K kinds (so each
    kind's ranking pairs stay whole), drawn more often where --kind-weight says so."""
    from argparse import Namespace
    from collections import Counter

    kinds_of_ladder = ["pristine"] + [
        k for k in ("jpeg_quality", "blur", "noise") for _ in range(5)
    ]
    train = {
        "content": np.repeat([0, 1], 16),
        "kinds": np.array(kinds_of_ladder * 2),
    }
    images = np.arange(32)
    args = Namespace(kinds_per_step=1, kind_weight={"jpeg_quality": 8.0}, seed=0)
    drawn: Counter = Counter()
    for step in range(200):
        kept = nr_trainer.sample_rungs(train, images, args, step)
        for content in (0, 1):
            mine = train["kinds"][kept[train["content"][kept] == content]]
            assert list(mine).count("pristine") == 1 and len(mine) == 6
            drawn[next(k for k in mine if k != "pristine")] += 1
    assert drawn["jpeg_quality"] > 3 * max(drawn["blur"], drawn["noise"])  # 8:1:1 expected
    args.kinds_per_step = 0
    assert np.array_equal(nr_trainer.sample_rungs(train, images, args, 0), images)
    assert nr_trainer._kind_weights("jpeg=2,webp=0.5") == {"jpeg": 2.0, "webp": 0.5}
