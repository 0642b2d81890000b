"""``deepiqa report STATE --publish s3://bucket/prefix/``: the latest report where a browser
opens it.

An audit state on HDFS or S3 is not browsable, and a report on S3 downloads instead of opening
unless it is served as HTML. This copies the latest run's ``report.html`` (``_LATEST`` names it)
to ``PREFIX/<run_id>/report.html`` and ``PREFIX/latest.html`` with ``Content-Type: text/html``
and prints a link a browser opens: a presigned GET URL (valid ``--expires-hours``; the bucket
stays private), or with ``--public-base URL`` the address under your own CDN or static site
that serves PREFIX. The report is self-contained (inline CSS, SVG and thumbnails, no fetches),
so one object is the whole page.

Reads the state from a path, ``file:``, ``s3://`` or ``s3a://`` (boto3; ``AWS_ENDPOINT_URL``
for S3-compatible stores).
"""

from __future__ import annotations

import json

from ..errors import UsageError
from .outcome import read_state_file

LATEST = "_LATEST"
RUNS = "runs"


def _split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.split("://", 1)[1].partition("/")
    return bucket, key


def latest_report(state: str) -> tuple[str, bytes]:
    """(run id, report.html bytes) of the state's latest published run."""
    text = read_state_file(state, LATEST)
    if not text:
        raise UsageError(f"{state} has no published audit run ({LATEST} is missing)")
    try:
        run_id = json.loads(text)["run_id"]
    except (ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"{state}/{LATEST} is unreadable ({exc})") from None
    html = read_state_file(state, RUNS, run_id, "report.html")
    if html is None:
        raise UsageError(f"{state}/{RUNS}/{run_id}/report.html is missing")
    return run_id, html


def publish_report(
    state: str, target: str, expires_hours: float = 168, public_base: str | None = None
) -> dict:
    """Copy the latest report under ``target`` (``s3://bucket/prefix/``); the links."""
    if not target.startswith("s3://"):
        raise UsageError(f"--publish {target}: an s3://bucket/prefix/ to copy the report to")
    bucket, prefix = _split(target)
    if not bucket:
        raise UsageError(f"--publish {target}: no bucket")
    import boto3
    from botocore.config import Config

    run_id, html = latest_report(state)
    # SigV4 links: the only presigning S3 accepts in regions opened since 2014
    client = boto3.client("s3", config=Config(signature_version="s3v4"))
    base = prefix.strip("/")
    keys = [f"{base}/{run_id}/report.html" if base else f"{run_id}/report.html"]
    keys.append(f"{base}/latest.html" if base else "latest.html")
    for key in keys:
        client.put_object(
            Bucket=bucket,
            Key=key,
            Body=html,
            ContentType="text/html; charset=utf-8",
            CacheControl="no-cache",
        )
    if public_base:
        links = [f"{public_base.rstrip('/')}/{key.removeprefix(base).lstrip('/')}" for key in keys]
    else:
        links = [
            client.generate_presigned_url(
                "get_object",
                Params={"Bucket": bucket, "Key": key},
                ExpiresIn=int(expires_hours * 3600),
            )
            for key in keys
        ]
    return {"run_id": run_id, "objects": [f"s3://{bucket}/{k}" for k in keys], "links": links}
