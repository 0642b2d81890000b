"""A listing split into parts (``listing_parts``) finds exactly what one driver-side listing
finds, each image once: S3 prefixes cut into key ranges (moto over HTTP), folders into
subfolders, hostile names included; and the Spark jobs' ``listed`` uses it."""

from __future__ import annotations

import hashlib
import os
from collections import Counter

import pytest

from deepiqa_core import listing_parts
from deepiqa_core.listing import ListingError, iter_versioned, list_images
from deepiqa_core.listing_parts import Part, list_part, plan_listing
from deepiqa_core.sources import s3_client

from .conftest import non_utf8_library

HOSTILE = [
    " leading space.jpg",
    "#hash%20.png",
    "-dash.jpg",
    "z",  # a boundary itself (not an image name)
    "z.jpg",
    "zz.jpg",
    "{brace}.jpg",
    "~tilde.JPG",
    "über.jpg",
    "\U0001f600.png",
    "a\u3000wide space.jpg",
    "notes.txt",
    "sub/",  # a folder marker
    "sub/inner.png",
]


def _keys() -> list[str]:
    flat = [f"lib/flat/{hashlib.sha1(str(i).encode()).hexdigest()[:10]}.jpg" for i in range(80)]
    tree = [
        f"lib/tree/2026-12-0{d}/p{p}/img{i:03d}.png"
        for d in (1, 2)
        for p in (1, 2, 3)
        for i in range(10)
    ]
    return flat + tree + [f"lib/odd/{name}" for name in HOSTILE] + ["library.jpg", "lib2/x.jpg"]


@pytest.fixture(scope="module")
def split_bucket(s3_server):
    """~160 keys under ``split/`` of the test bucket; the tests probe 12 keys at a time, so
    they are split as 10M keys would be."""
    from moto.core.authorization import disable_iam_authentication

    with disable_iam_authentication():  # hostile keys and moto's signature checks (#5948)
        for key in _keys():
            s3_client().put_object(Bucket=s3_server["bucket"], Key=f"split/{key}", Body=b"x")
    return f"s3://{s3_server['bucket']}/split"


def _union(plan, versions: bool = False) -> Counter:
    rows = Counter(plan.rows)
    for part in plan.parts:
        rows.update(list_part(part, versions))
    return rows


@pytest.mark.parametrize(
    "source, recursive",
    [
        ("lib/", True),
        ("lib", True),  # a string prefix: also lib2/ and library.jpg
        ("lib/tree/", True),
        ("lib/flat/", True),
        ("lib/odd/", False),
        ("lib/tree/*/p2/*.png", True),
    ],
)
def test_key_ranges_list_exactly_what_the_driver_lists(
    split_bucket, s3_listing_prefixes, monkeypatch, source, recursive
):
    monkeypatch.setattr(listing_parts, "PROBE_KEYS", 12)
    uri = f"{split_bucket}/{source}"
    expected = list_images(uri, recursive=recursive)
    plan = plan_listing(uri, recursive, parts=16)
    assert plan is not None and len(plan.parts) > 1
    found = _union(plan)
    assert max(found.values()) == 1  # each image once
    assert sorted(u for (u,) in found) == expected
    assert all(p.lo is not None for p in plan.parts)


def test_key_ranges_cover_deep_skew_and_carry_versions(
    split_bucket, s3_listing_prefixes, monkeypatch
):
    """Everything under one long shared stem (dates): the cuts follow it down; the version
    keys are the driver listing's."""
    monkeypatch.setattr(listing_parts, "PROBE_KEYS", 12)
    uri = f"{split_bucket}/lib/tree/"
    plan = plan_listing(uri, True, versions=True, parts=6)
    assert plan is not None
    assert len(plan.parts) >= 6
    assert all(p.lo.startswith("split/lib/tree/2026-12-0") for p in plan.parts[1:])
    assert sorted(_union(plan, versions=True)) == sorted(iter_versioned(uri))


def test_a_short_prefix_is_left_to_the_driver(split_bucket, s3_listing_prefixes):
    assert plan_listing(f"{split_bucket}/lib/odd/", True) is None  # 14 keys: one page
    assert plan_listing(f"{split_bucket}/nothing-here/", True) is None
    with pytest.raises(ListingError, match="cannot list s3://no-such-bucket/p/: NoSuchBucket"):
        plan_listing("s3://no-such-bucket/p/", True)  # as the driver's listing says it


def test_a_folder_is_split_by_subfolders(tmp_path):
    root = tmp_path / "photos"
    for sub in ("a", "b/deep", "c x[1]"):
        (root / sub).mkdir(parents=True)
        (root / sub / "one.jpg").write_bytes(b"x")
        (root / sub / "two.PNG").write_bytes(b"x")
    (root / "top.jpg").write_bytes(b"x")
    (root / "readme.txt").write_bytes(b"x")
    (root / "folder.jpg").mkdir()  # listed (and entered)
    (root / "folder.jpg" / "in.jpg").write_bytes(b"x")
    os.symlink(root / "a", root / "linked")  # listed as entries only, never entered
    os.symlink(root / "gone.jpg", root / "broken.jpg")
    non_utf8_library(root / "b")
    expected = list_images(str(root))
    plan = plan_listing(str(root), True, versions=False)
    assert plan is not None
    assert sorted(p.source for p in plan.parts) == sorted(
        str(root / s) for s in ("a", "b", "c x[1]", "folder.jpg")
    )
    found = _union(plan)
    assert max(found.values()) == 1
    assert sorted(u for (u,) in found) == expected
    assert plan_listing(str(root), False) is None  # non-recursive: the driver's
    assert plan_listing(str(root / "a"), True) is None  # no subfolders


def test_parts_pickle_small():
    """Parts travel to executors as task data: plain strings."""
    import pickle

    part = Part("s3://b/p/", True, "p/a", "p/b")
    assert pickle.loads(pickle.dumps(part)) == part
    assert len(pickle.dumps(part)) < 200


def test_the_spark_listing_uses_executors_and_finds_the_same_rows(
    spark, split_bucket, s3_listing_prefixes, monkeypatch, tmp_path
):
    from deepiqa_core.spark.inputs import listed

    monkeypatch.setattr(listing_parts, "PROBE_KEYS", 12)
    uri = f"{split_bucket}/lib/"
    stage = tmp_path / "stage"
    frame = listed(spark, uri, True, "uri", stage=str(stage), version="v")
    assert len(list(stage.glob("part-*.parquet"))) > 1  # one file per part (task)
    rows = sorted((r.uri, r.v) for r in frame.collect())
    assert rows == sorted(iter_versioned(uri))


@pytest.mark.parametrize("key", ["lib/a", "lib/0", "lib/-", "x\x00", "lib/\ue000", "lib/ü", "a"])
def test_key_before_is_below_the_key_and_above_its_predecessors(key):
    from deepiqa_core.listing import key_before

    start = key_before(key)
    assert start < key
    start.encode("utf-8")  # a valid S3 key (no lone surrogates)
    code = max(ord(key[-1]) - 1, 0)
    code = 0xD7FF if 0xD800 <= code <= 0xDFFF else code  # keys hold no lone surrogates
    below = key[:-1] + chr(code)  # a key just below, and its extensions
    if below < key:
        assert below <= start and below + "abc/def.jpg" <= start
