"""The one listing rule: which images a folder, glob, file or S3 prefix stands for.

``deepiqa score`` and every Spark job list through ``list_images``, so a laptop user and a
cluster job see the same files:

* a local **file** is itself (whatever its suffix: naming it is asking for it);
* a local **folder** is every entry below it whose name has an image suffix (``IMAGE_SUFFIXES``,
  any letter case), searched **recursively** by default (``recursive=False``: its own entries).
  Selection is by name alone, so nothing named like an image is dropped silently: a broken
  symlink, a FIFO or a folder named ``x.jpg`` gets a row whose error says why it was not read;
* a **glob** (``photos/*.jpg``, ``photos/**/*.png``) is its matching entries with image names;
* an **S3 prefix** (``s3://bucket/photos/``) is every image key that starts with it (S3 prefixes
  are strings, so ``s3://b/2026-`` also works); ``recursive=False`` keeps the keys directly in
  the folder ``<prefix>/``; a glob in the key (``s3://b/photos/*.png``) filters keys with
  fnmatch (``*`` also matches ``/``).

``iter_versioned`` lists the same images with each one's *version key*, what the nightly audit
compares to find new and changed images without reading them: local files ``size-mtime_ns``
(``missing`` for an entry that cannot be stat'ed, e.g. a broken link), S3 objects
``etag-size`` (both come with the listing: no request per object).

Local names that are no UTF-8 are listed in ``sources.byte_safe``'s form (a percent-encoded
``file://`` URI), so every output can store them and they are still read. Results are sorted. A
local path that does not exist is a usage error; an S3 listing that fails
(no such bucket, access denied, no credentials) is a ``ListingError`` (the run cannot be done).
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

from .errors import DeepIQAError, UsageError
from .sources import byte_safe, is_s3, local_path, s3_client, split_s3

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
GLOB_CHARS = "*?["


class ListingError(DeepIQAError):
    """A source that exists (or may) but could not be listed: the run cannot be done."""

    code = "listing_error"


def is_image_name(name: str) -> bool:
    return name.lower().endswith(IMAGE_SUFFIXES)


def list_images(source: str, *, recursive: bool = True) -> list[str]:
    """The image URIs (local paths or ``s3://`` URIs) ``source`` stands for, sorted."""
    return sorted(iter_images(source, recursive=recursive))


def iter_images(source: str, *, recursive: bool = True) -> Iterator[str]:
    """``list_images`` as a stream, unsorted: memory does not grow with the number of images
    (the Spark jobs stage a listing in chunks)."""
    if is_s3(source):
        return list_s3(source, recursive)
    scheme = urlparse(source).scheme
    if len(scheme) > 1 and scheme != "file":  # one letter: a Windows drive, not a scheme
        raise UsageError(
            f"{source}: {scheme}:// is not listed here (local paths, file:// and s3:// are)"
        )
    path = local_path(source)
    if any(ch in str(path) for ch in GLOB_CHARS) and not os.path.lexists(path):
        anchor = Path(path.anchor) if path.is_absolute() else Path(".")
        pattern = str(path.relative_to(anchor)) if path.is_absolute() else str(path)
        return (byte_safe(str(p)) for p in anchor.glob(pattern) if is_image_name(p.name))
    if path.is_dir():
        return walk_folder(path, recursive)
    if os.path.lexists(path):  # a file, or a broken link, FIFO ...: named, so listed
        return iter([byte_safe(str(path))])
    raise UsageError(f"{source} does not exist")


def absolute(uri: str) -> str:
    """A local path made absolute (listed rows are read by workers running elsewhere); URIs
    as they are. The one rule of the Spark and Beam listings."""
    return uri if "://" in uri else os.path.abspath(uri)


def iter_versioned(source: str, *, recursive: bool = True) -> Iterator[tuple[str, str]]:
    """``(uri, version key)`` for every image ``source`` stands for, as a stream (see the
    module docstring for the keys)."""
    if is_s3(source):
        return list_s3(source, recursive, versions=True)
    return ((uri, local_version(uri)) for uri in iter_images(source, recursive=recursive))


def local_version(path: str) -> str:
    """``size-mtime_ns`` of a local file (the link itself when its target is gone)."""
    try:
        st = os.stat(local_path(path))
    except OSError:
        return "missing"
    return f"{st.st_size}-{st.st_mtime_ns}"


def walk_folder(folder: Path, recursive: bool) -> Iterator[str]:
    """Every entry below ``folder`` whose name is an image name, whatever it is: a broken or
    looping symlink, a FIFO, even a folder named ``x.jpg`` is listed, and its row then says why
    it could not be read. Symlinked folders are listed, not entered (no loops)."""
    for root, dirs, files in os.walk(folder):
        for name in (*files, *dirs):
            if is_image_name(name):
                yield byte_safe(os.path.join(root, name))
        if not recursive:
            break


def list_s3(
    source: str,
    recursive: bool,
    versions: bool = False,
    *,
    lo: str | None = None,
    hi: str | None = None,
) -> Iterator:
    """The images of an ``s3://`` source; ``lo``/``hi``: only the keys in ``[lo, hi)`` (one
    part of a split listing, ``listing_parts``)."""
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, key = split_s3(source)
    prefix = literal_prefix(key)
    pattern = key if prefix != key else None  # a glob in the key filters with fnmatch
    folder = prefix.rstrip("/") + "/" if prefix.rstrip("/") else ""
    scheme = urlparse(source).scheme
    try:
        paginator = s3_client().get_paginator("list_objects_v2")
        pages = paginator.paginate(Bucket=bucket, Prefix=prefix, **start_after(lo, prefix))
        for page in pages:
            for obj in page.get("Contents", []):
                key = obj["Key"]
                if hi is not None and key >= hi:
                    return
                if (lo and key < lo) or key.endswith("/") or not is_image_name(key):
                    continue
                if pattern is not None:
                    wanted = fnmatch.fnmatchcase(key, pattern)
                else:
                    wanted = recursive or (key.startswith(folder) and "/" not in key[len(folder) :])
                if wanted and versions:
                    etag = str(obj.get("ETag", "")).strip('"')
                    yield f"{scheme}://{bucket}/{key}", f"{etag}-{obj.get('Size', 0)}"
                elif wanted:
                    yield f"{scheme}://{bucket}/{key}"
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        raise ListingError(f"cannot list {source}: {code or exc}") from exc
    except BotoCoreError as exc:  # no credentials, endpoint unreachable, ...
        raise ListingError(f"cannot list {source}: {exc}") from exc


def literal_prefix(key: str) -> str:
    """An S3 key pattern up to its first glob character: the ``Prefix`` it is listed by."""
    return key[: min((key.find(ch) for ch in GLOB_CHARS if ch in key), default=len(key))]


def start_after(lo: str | None, prefix: str) -> dict[str, str]:
    """``list_objects_v2``'s ``StartAfter`` for the keys of ``prefix`` from ``lo`` on (none
    from the prefix itself: all its keys)."""
    return {"StartAfter": key_before(lo)} if lo and lo != prefix else {}


def key_before(key: str) -> str:
    """A ``StartAfter`` just below ``key``: its predecessor character then ``~`` x 8, above
    every key below ``key`` but the rare ones that continue that predecessor with ``~`` x 8 or
    a character above ``~`` (listed again and dropped by a ``>= key`` check, never missed).
    ASCII padding, not U+10FFFF: S3-compatible stores sign and compare such keys alike."""
    last = ord(key[-1])
    if not last:
        return key[:-1]
    before = last - 1 if not 0xD800 <= last - 1 <= 0xDFFF else 0xD7FF  # no lone surrogates
    return key[:-1] + chr(before) + "~" * 8
