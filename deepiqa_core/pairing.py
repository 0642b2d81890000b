"""The one full-reference pairing rule, for the CLI (here, in Python) and Spark (the same regular
expressions in ``regexp_extract``; ``deepiqa_core.spark.pairing``).

* A URI's **stem** is its last path part without its last extension (``STEM_REGEX``):
  ``s3://b/refs/cat.v2.png`` -> ``cat.v2``.
* A distorted image's **key** is group 1 of ``pair_regex`` searched in its stem; the default
  (``DEFAULT_PAIR_REGEX``) is the part before the first ``__``: ``cat__jpeg_q10.jpg`` -> ``cat``,
  ``cat.jpg`` -> ``cat``. No match, or an empty key, leaves the image unpaired.
* It pairs with the reference whose stem equals the key. When several references share a stem
  (``cat.png`` and ``cat.jpg``), the smallest URI (plain string order) wins, everywhere.

Both regular expressions are written to mean the same in Python's ``re`` and Java's
``java.util.regex`` (what Spark uses); a test pairs the same tricky names both ways.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import lru_cache

STEM_REGEX = r"([^/]+?)(\.[^./]*)?$"
DEFAULT_PAIR_REGEX = r"^(.+?)(?:__.*)?$"


@lru_cache(maxsize=16)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def check_pair_regex(pattern: str) -> str:
    """``pattern`` if it compiles and has a group 1 (the key), else ValueError."""
    compiled = _compiled(pattern)
    if compiled.groups < 1:
        raise ValueError(f"--pair-regex {pattern!r} needs a group: group 1 is the key")
    return pattern


def _group1(pattern: str, text: str) -> str:
    """Like Spark's ``regexp_extract(text, pattern, 1)``: '' when nothing matches."""
    match = _compiled(pattern).search(text)
    return (match.group(1) or "") if match else ""


def file_stem(uri: str) -> str:
    return _group1(STEM_REGEX, uri)


def pair_key(uri: str, pair_regex: str = DEFAULT_PAIR_REGEX) -> str | None:
    """The reference stem a distorted image pairs with, or None (unpaired)."""
    return _group1(pair_regex, file_stem(uri)) or None


def reference_index(references: Iterable[str]) -> dict[str, str]:
    """Stem -> reference URI; among references sharing a stem, the smallest URI."""
    index: dict[str, str] = {}
    for uri in sorted(references):
        stem = file_stem(uri)
        if stem:
            index.setdefault(stem, uri)
    return index


def pair_images(
    images: Sequence[str], references: Iterable[str], pair_regex: str = DEFAULT_PAIR_REGEX
) -> list[tuple[str, str | None]]:
    """``(image, its reference or None)`` for every image, in the images' order."""
    index = reference_index(references)
    pairs = []
    for uri in images:
        key = pair_key(uri, pair_regex)
        pairs.append((uri, index.get(key) if key is not None else None))
    return pairs
