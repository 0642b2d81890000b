import os
import threading

import pytest

from deepiqa_core import sources
from deepiqa_core.errors import (
    AccessDeniedError,
    MissingInputError,
    ReadError,
    ReadTimeoutError,
    UsageError,
)
from deepiqa_core.listing import ListingError, list_images
from deepiqa_core.sources import is_s3, read_bytes, split_s3

from .conftest import encode, make_image


def test_local_paths_and_file_uris(tmp_path):
    path = tmp_path / "a b.png"
    path.write_bytes(b"123")
    assert read_bytes(str(path)) == b"123"
    assert read_bytes(path.as_uri()) == b"123"
    with pytest.raises(MissingInputError) as err:
        read_bytes(str(tmp_path / "nope.png"))
    assert err.value.code == "missing"
    with pytest.raises(ReadError):
        read_bytes(str(tmp_path))


def test_local_listing_rule(tmp_path):
    (tmp_path / "sub").mkdir()
    for name in ("b.png", "a.JPG", "sub/c.webp", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")

    def names(found: list[str]) -> list[str]:
        return [p.removeprefix(str(tmp_path) + "/") for p in found]

    assert names(list_images(str(tmp_path))) == ["a.JPG", "b.png", "sub/c.webp"]  # recursive
    assert names(list_images(str(tmp_path), recursive=False)) == ["a.JPG", "b.png"]
    assert list_images(str(tmp_path / "*.png")) == [str(tmp_path / "b.png")]
    assert names(list_images(str(tmp_path / "**/*.webp"))) == ["sub/c.webp"]
    assert list_images(str(tmp_path / "notes.txt")) == [str(tmp_path / "notes.txt")]  # named
    assert list_images((tmp_path / "b.png").as_uri()) == [str(tmp_path / "b.png")]
    assert list_images(str(tmp_path / "none-*.png")) == []
    with pytest.raises(UsageError, match="does not exist"):
        list_images(str(tmp_path / "missing"))


def test_s3_uri_parsing():
    assert is_s3("s3://bucket/a/b.png") and is_s3("s3a://bucket/x") and not is_s3("/tmp/x")
    assert split_s3("s3://bucket/a/b.png") == ("bucket", "a/b.png")


def test_s3_reads_lists_and_maps_errors(s3_server):
    import boto3

    s3 = boto3.client("s3")
    data = encode(make_image(40, 40))
    for key in ("lib/one.png", "lib/two.jpg", "lib/skip.txt", "secret/x.png"):
        s3.put_object(Bucket="media", Key=key, Body=data)
    assert read_bytes("s3://media/lib/one.png") == data
    s3.put_object(Bucket="media", Key="lib/deeper/three.png", Body=data)
    listed = ["s3://media/lib/deeper/three.png", "s3://media/lib/one.png", "s3://media/lib/two.jpg"]
    assert list_images("s3://media/lib") == listed
    assert list_images("s3://media/lib", recursive=False) == listed[1:]
    assert list_images("s3://media/lib*.jpg") == ["s3://media/lib/two.jpg"]
    with pytest.raises(ListingError, match="NoSuchBucket|AccessDenied"):
        list_images("s3://no-such-bucket/x")
    with pytest.raises(MissingInputError):
        read_bytes("s3://media/lib/none.png")
    with pytest.raises(AccessDeniedError):  # the user's policy covers only "media", as on AWS
        read_bytes("s3://another-bucket/x.png")
    with pytest.raises(AccessDeniedError) as err:
        read_bytes("s3://media/secret/x.png")
    assert err.value.code == "access_denied"


def test_reads_reuse_their_threads_and_a_stalled_one_is_replaced(tmp_path):
    path = tmp_path / "a.png"
    path.write_bytes(b"123")
    readers: list[threading.Thread] = []  # held, so no thread object is reused
    stalled = threading.Event()
    real = sources._read_local

    def read(uri: str, max_bytes: int) -> bytes:
        readers.append(threading.current_thread())
        if uri.endswith("stalls.png"):  # a read blocked in the kernel, in effect
            stalled.wait(30)
        return real(uri, max_bytes)

    idle = sum(t.name == "deepiqa-read" for t in threading.enumerate())
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sources, "_read_local", read)
        for _ in range(50):
            assert read_bytes(str(path)) == b"123"
        # one after another: served by the threads already there (or one new), not 50 threads
        assert len({id(t) for t in readers}) <= max(1, idle)
        assert readers[0] is not threading.current_thread()  # but not the caller's
        with pytest.raises(ReadTimeoutError):
            read_bytes(str(tmp_path / "stalls.png"), timeout=0.2)
        assert read_bytes(str(path), timeout=5) == b"123"  # while that one is still blocked
        stalled.set()
    assert readers[-1] is not readers[-2]  # served by a new thread


def test_a_forked_child_reads_and_decodes_with_threads_of_its_own(tmp_path):
    import multiprocessing

    from deepiqa_core.imaging import decode_in_order

    path = tmp_path / "a.png"
    path.write_bytes(b"123")
    assert read_bytes(str(path)) == b"123"  # the parent now has reader and decode threads
    assert [r for _, r in decode_in_order(range(9), lambda i, admit: i, 3)] == list(range(9))

    def child() -> None:
        ok = read_bytes(str(path), timeout=10) == b"123"
        ok &= [r for _, r in decode_in_order(range(9), lambda i, admit: -i, 3)] == [
            -i for i in range(9)
        ]
        os._exit(0 if ok else 1)

    process = multiprocessing.get_context("fork").Process(target=child)
    process.start()
    process.join(60)
    assert process.exitcode == 0
