"""Reading bytes from local paths and S3, with failures mapped to stable error codes.

S3 is read with boto3 (the ``s3`` extra), not Hadoop's s3a connector, so no Hadoop jars are needed.
Endpoint, region and credentials come from the standard AWS settings (``AWS_ENDPOINT_URL``,
``AWS_ACCESS_KEY_ID``, profiles, instance roles ...). One client is made per process and reused;
retries use botocore's ``standard`` mode.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from .errors import AccessDeniedError, MissingInputError, ReadError

S3_SCHEMES = ("s3", "s3a", "s3n")
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
