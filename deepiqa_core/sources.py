"""Reading image bytes from local paths and S3, with failures mapped to stable error codes.

S3 is read with boto3 (the ``s3`` extra), not Hadoop's s3a connector, so no Hadoop jars are needed.
Endpoint, region and credentials come from the standard AWS settings (``AWS_ENDPOINT_URL``,
``AWS_ACCESS_KEY_ID``, profiles, instance roles ...). One client is made per process and reused;
retries use botocore's ``standard`` mode.
"""

from __future__ import annotations

import fnmatch
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from .errors import AccessDeniedError, MissingInputError, ReadError

S3_SCHEMES = ("s3", "s3a", "s3n")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
S3_MAX_ATTEMPTS = 5


_client_lock = threading.Lock()
_client: Any = None


def s3_client() -> Any:
    """This process's boto3 S3 client (thread-safe to share; made on first use)."""
    global _client
    with _client_lock:
        if _client is None:
            import boto3
            from botocore.config import Config

            config = Config(
                retries={"mode": "standard", "max_attempts": S3_MAX_ATTEMPTS},
                max_pool_connections=32,
            )
            _client = boto3.session.Session().client("s3", config=config)
        return _client


def reset_s3_client() -> None:
    """Forget the cached client (after changing AWS settings, e.g. in tests)."""
    global _client
    with _client_lock:
        _client = None


def is_s3(uri: str) -> bool:
    return urlparse(uri).scheme in S3_SCHEMES


def split_s3(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    return parsed.netloc, parsed.path.lstrip("/")


def local_path(uri: str) -> Path:
    parsed = urlparse(uri)
    return Path(unquote(parsed.path)) if parsed.scheme == "file" else Path(uri)


def read_bytes(uri: str) -> bytes:
    """The bytes at a local path, ``file://`` URI or ``s3://bucket/key``; typed errors."""
    if is_s3(uri):
        return _read_s3(uri)
    path = local_path(uri)
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise MissingInputError(f"no such file: {path}") from exc
    except PermissionError as exc:
        raise AccessDeniedError(f"permission denied: {path}") from exc
    except IsADirectoryError as exc:
        raise ReadError(f"is a directory: {path}") from exc
    except OSError as exc:
        raise ReadError(f"cannot read {path}: {exc}") from exc


def _read_s3(uri: str) -> bytes:
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, key = split_s3(uri)
    try:
        return s3_client().get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in ("NoSuchKey", "NoSuchBucket", "404") or status == 404:
            raise MissingInputError(f"no such object: {uri}") from exc
        if code in ("AccessDenied", "403", "AllAccessDisabled") or status == 403:
            raise AccessDeniedError(f"access denied: {uri}") from exc
        raise ReadError(f"cannot read {uri}: {code or exc}") from exc
    except BotoCoreError as exc:
        raise ReadError(f"cannot read {uri}: {exc}") from exc


def list_s3(prefix_uri: str, suffixes: tuple[str, ...] = IMAGE_SUFFIXES) -> Iterator[str]:
    """``s3://`` URIs under a prefix (paginated; keys ending in ``/`` and non-images skipped).

    A glob in the last part (``s3://b/photos/*.png``) filters keys with fnmatch.
    """
    bucket, prefix = split_s3(prefix_uri)
    pattern = None
    if any(ch in prefix for ch in "*?["):
        pattern = prefix
        prefix = prefix[: min(prefix.find(ch) for ch in "*?[" if ch in prefix)]
    pages = s3_client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    scheme = urlparse(prefix_uri).scheme
    for page in pages:
        for obj in page.get("Contents", []):
            key = obj["Key"]
            if key.endswith("/") or not key.lower().endswith(suffixes):
                continue
            if pattern is None or fnmatch.fnmatchcase(key, pattern):
                yield f"{scheme}://{bucket}/{key}"


def list_local(path_or_glob: str, suffixes: tuple[str, ...] = IMAGE_SUFFIXES) -> list[str]:
    """Image files in a folder (recursively) or matching a glob, sorted."""
    path = local_path(path_or_glob)
    if path.is_dir():
        candidates = path.rglob("*")
    else:
        anchor = Path(path.anchor) if path.is_absolute() else Path(".")
        candidates = anchor.glob(str(path.relative_to(anchor)) if path.is_absolute() else str(path))
    return sorted(str(p) for p in candidates if p.is_file() and p.suffix.lower() in suffixes)
