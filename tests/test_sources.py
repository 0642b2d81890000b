import pytest

from deepiqa_core.errors import AccessDeniedError, MissingInputError, ReadError
from deepiqa_core.sources import is_s3, list_local, list_s3, read_bytes, split_s3

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


def test_local_listing_is_recursive_sorted_and_images_only(tmp_path):
    (tmp_path / "sub").mkdir()
    for name in ("b.png", "a.JPG", "sub/c.webp", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    names = [p.removeprefix(str(tmp_path) + "/") for p in list_local(str(tmp_path))]
    assert names == ["a.JPG", "b.png", "sub/c.webp"]
    assert list_local(str(tmp_path / "*.png")) == [str(tmp_path / "b.png")]


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
    assert list(list_s3("s3://media/lib")) == ["s3://media/lib/one.png", "s3://media/lib/two.jpg"]
    assert list(list_s3("s3://media/lib*.jpg")) == ["s3://media/lib/two.jpg"]
    with pytest.raises(MissingInputError):
        read_bytes("s3://media/lib/none.png")
    with pytest.raises(AccessDeniedError):  # the user's policy covers only "media", as on AWS
        read_bytes("s3://another-bucket/x.png")
    with pytest.raises(AccessDeniedError) as err:
        read_bytes("s3://media/secret/x.png")
    assert err.value.code == "access_denied"
