"""A listing split into parts that executors list: the driver only plans.

At ten million objects one process walking a prefix is the bottleneck (and the driver's time).
``plan_listing`` looks at the top of a source and returns what it has already listed plus
``Part``s; ``list_part`` lists one part wherever it runs. The union of the plan's rows and every
part's rows is exactly ``listing.iter_images`` (or ``iter_versioned``) of the source, each image
once: the same selection rule (``listing``'s) is applied in every part.

* An **S3 prefix** is split by **key ranges**. A range ``[lo, hi)`` is probed with one list
  request (``PROBE_KEYS`` keys): a range that ends inside the page is a part as it is; a longer
  one is cut where its page's keys diverge (the stem, then ``stem + c`` for ``SPLIT_CHARS``), and
  the pieces are probed in turn, breadth first, until at least ``parts`` ranges are known to
  hold keys (a piece an earlier page already covers costs no request). Key ranges need no
  layout: flat prefixes of hashed names and ``date/partner/`` trees split alike, and skew only
  costs probes. Every range lists with ``StartAfter`` just below ``lo`` and stops at ``hi``;
  the driver keeps none of the probes' keys.
* A local **folder** listed recursively is split by its **subfolders** (each walked on an
  executor); the driver lists the folder's own entries. A shared file system (NFS) is assumed
  when executors run elsewhere, as for reading the images.
* Anything else (a file, a glob on a local path, a non-recursive folder, a small prefix) is
  listed by the driver: ``plan_listing`` returns no parts.
"""

from __future__ import annotations

import os
from bisect import bisect_left
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from .listing import (
    GLOB_CHARS,
    ListingError,
    iter_images,
    list_s3,
    literal_prefix,
    local_version,
    start_after,
    walk_folder,
)
from .sources import byte_safe, is_s3, local_path, s3_client, split_s3

PROBE_KEYS = 1000  # one list request's page: a range this short is listed by the driver
# boundaries a range is cut at (sorted): what names are made of; any other character falls
# between two of them, so the pieces still cover the range
SPLIT_CHARS = "-./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
MAX_DEPTH = 200  # characters fixed beyond the prefix before a range is listed as it is
PROBE_THREADS = 16


Range = tuple[str, str | None]  # keys in [lo, hi); hi None: to the end of the prefix


@dataclass(frozen=True)
class Part:
    """What one executor task lists: a local folder (walked recursively), or the keys of an
    ``s3://`` source in ``[lo, hi)`` (``hi`` None: to the end of the prefix)."""

    source: str
    recursive: bool = True
    lo: str | None = None
    hi: str | None = None


@dataclass(frozen=True)
class Plan:
    """The rows the driver listed while planning, and the parts left to executors."""

    rows: list[tuple[str, ...]]
    parts: list[Part]


def plan_listing(
    source: str, recursive: bool, *, versions: bool = False, parts: int = 64
) -> Plan | None:
    """How to list ``source`` on executors, or None when the driver should list it itself.
    ``parts``: how many parts to aim at (more than the executors' cores evens out skew)."""
    if is_s3(source):
        return _plan_s3(source, recursive, parts)
    path = local_path(source)
    if not recursive or not path.is_dir() or any(ch in source for ch in GLOB_CHARS):
        return None
    return _plan_folder(path, versions)


def list_part(part: Part, versions: bool = False) -> Iterator[tuple[str, ...]]:
    """One part's rows: ``(uri,)``, or ``(uri, version key)`` with ``versions``."""
    if is_s3(part.source):
        listing = list_s3(part.source, part.recursive, versions, lo=part.lo, hi=part.hi)
        return (row if versions else (row,) for row in listing)
    uris = iter_images(part.source, recursive=True)
    return ((u, local_version(u)) if versions else (u,) for u in uris)


# --- local folders ------------------------------------------------------------------------


def _plan_folder(folder: Path, versions: bool) -> Plan | None:
    """The folder's own image-named entries here; each real subfolder (not a link: links
    are listed, never entered, as ``listing.walk_folder`` does) is a part."""
    folder = folder.absolute()
    with os.scandir(folder) as entries:
        subfolders = sorted(e.path for e in entries if e.is_dir(follow_symlinks=False))
    if not subfolders:
        return None
    own = list(walk_folder(folder, recursive=False))
    rows: list[tuple[str, ...]] = [(u, local_version(u)) if versions else (u,) for u in own]
    return Plan(rows, [Part(byte_safe(s)) for s in subfolders])


# --- S3 key ranges ------------------------------------------------------------------------


def _plan_s3(source: str, recursive: bool, parts: int) -> Plan | None:
    """``_plan_key_ranges``; a probe that fails (no such bucket, access denied, no
    credentials) is a ``ListingError``, as the driver's listing would raise."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return _plan_key_ranges(source, recursive, parts)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        raise ListingError(f"cannot list {source}: {code or exc}") from exc
    except BotoCoreError as exc:
        raise ListingError(f"cannot list {source}: {exc}") from exc


def _plan_key_ranges(source: str, recursive: bool, parts: int) -> Plan | None:
    """Key ranges of the source's prefix: probed and cut, breadth first, until ``parts``
    ranges are known to hold keys (short ones are parts too: every key is listed by a part,
    under one rule, and nothing the probes saw is held on the driver)."""
    bucket, key = split_s3(source)
    prefix = literal_prefix(key)
    whole: Range = (prefix, None)
    first = _probe(bucket, prefix, prefix)
    seen = [first]  # every page so far: later pieces they cover cost no request
    if first.says(whole) is not None:  # one page: the driver lists it as before
        return None
    short: list[Range] = []
    longer: list[tuple[Range, str]] = [(whole, first.stem(whole))]
    with ThreadPoolExecutor(PROBE_THREADS) as pool:
        while len(short) + len(longer) < parts:
            cuts = [(r, _cut(r, stem, prefix)) for r, stem in longer]
            pieces = sorted((p for _, ps in cuts for p in ps), key=lambda r: r[0])
            if not pieces:
                break
            longer = [(r, stem) for (r, stem), (_, ps) in zip(longer, cuts, strict=True) if not ps]
            for piece, probe in _probe_all(pool, bucket, prefix, pieces, seen):
                holds = probe.says(piece)
                if holds:
                    short.append(piece)
                elif holds is None:
                    longer.append((piece, probe.stem(piece)))
    ranges = sorted(short + [r for r, _ in longer], key=lambda r: r[0])
    return Plan([], [Part(source, recursive, lo, hi) for lo, hi in ranges])


def _probe_all(
    pool: ThreadPoolExecutor, bucket: str, prefix: str, pieces: list[Range], seen: list[Probe]
) -> list[tuple[Range, Probe]]:
    """Each piece with a probe that answers for it. A page lists on past its own range, so
    pieces are probed in order, ``PROBE_THREADS`` at a time, and a piece an earlier page
    already covers costs no request (most pieces of a cut are empty)."""
    answered: list[tuple[Range, Probe]] = []
    todo = pieces
    while todo:
        waiting = []
        for piece in todo:
            probe = next((p for p in seen if p.answers(piece)), None)
            if probe is not None:
                answered.append((piece, probe))
            else:
                waiting.append(piece)
        batch = waiting[:PROBE_THREADS]
        seen.extend(pool.map(partial(_probe, bucket, prefix), [lo for lo, _ in batch]))
        todo = waiting
    return answered


@dataclass(frozen=True)
class Probe:
    """One list request from ``lo``: the keys it returned (sorted, ``>= lo``: every key of
    the prefix from ``lo`` to the last of them) and whether the prefix has more after them."""

    lo: str
    keys: list[str]
    truncated: bool

    def covers(self, piece: Range) -> bool:
        """Whether this page holds every key of ``piece``."""
        lo, hi = piece
        if lo < self.lo:
            return False
        return not self.truncated or (hi is not None and bool(self.keys) and hi <= self.keys[-1])

    def answers(self, piece: Range) -> bool:
        """Whether ``says`` knows about ``piece``: it covers it, or it was made for it."""
        return self.covers(piece) or self.lo == piece[0]

    def says(self, piece: Range) -> bool | None:
        """True: the piece holds keys, all in this page; False: none; None: a page from the
        piece's start ends inside it (more than a page: cut it)."""
        lo, hi = piece
        if not self.covers(piece):
            return None
        first = bisect_left(self.keys, lo)
        return first < len(self.keys) and (hi is None or self.keys[first] < hi)

    def stem(self, piece: Range) -> str:
        """Where the piece's keys in this page diverge (a long piece is cut there)."""
        lo, hi = piece
        inside = [k for k in self.keys if k >= lo and (hi is None or k < hi)]
        return os.path.commonprefix([inside[0], inside[-1]]) if inside else lo


def _probe(bucket: str, prefix: str, lo: str) -> Probe:
    """One list request: up to a page of the prefix's keys from ``lo`` on."""
    page = s3_client().list_objects_v2(
        Bucket=bucket, Prefix=prefix, MaxKeys=PROBE_KEYS, **start_after(lo, prefix)
    )
    keys = [o["Key"] for o in page.get("Contents", []) if o["Key"] >= lo]
    return Probe(lo, keys, bool(page.get("IsTruncated")))


def _cut(key_range: Range, stem: str, prefix: str) -> list[Range]:
    """``[lo, hi)`` cut at ``stem``, ``stem + c`` for each of ``SPLIT_CHARS`` and the first
    string after every ``stem...``: the boundaries that fall inside the range. The stem is
    where the range's first page of keys diverge, so a long shared stem (``2026-12-07/``) is
    jumped over in one cut, not probed character by character. No cut (``[]``) when no
    boundary falls inside or the stem is ``MAX_DEPTH`` characters past the prefix."""
    lo, hi = key_range
    if len(stem) - len(prefix) >= MAX_DEPTH:
        return []
    bounds = [stem, *(stem + c for c in SPLIT_CHARS)]
    if stem and ord(stem[-1]) < 0x10FFFF:
        bounds.append(stem[:-1] + chr(ord(stem[-1]) + 1))
    inside = sorted({b for b in bounds if b > lo and (hi is None or b < hi)})
    if not inside:
        return []
    return list(zip([lo, *inside], [*inside, hi], strict=True))
