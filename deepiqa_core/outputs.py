"""What an output folder may be: never an input, and replaced only when deepiqa made it.

Every folder deepiqa writes carries ``_DEEPIQA_OUTPUT`` (what made it, when). ``--overwrite``
replaces a folder only if it has that marker (or is an earlier deepiqa output without one: a
scoring output with ``_COMPLETE`` and ``summary.json``, a training run with ``metrics.jsonl`` or
``checkpoints/``); anything else is refused as a usage error, so a mistyped ``--output`` can never
delete a user's data. An output that is, contains, or lies inside an input (the images, the
references, the weights) is refused too.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from pathlib import Path

from .exits import UsageError
from .listing import GLOB_CHARS
from .sources import is_s3

MARKER = "_DEEPIQA_OUTPUT"
# files that show a folder was made by deepiqa before the marker existed
LEGACY_SIGNS = (("_COMPLETE", "summary.json"), ("metrics.jsonl",), ("checkpoints",))


def marker_text(kind: str) -> str:
    record = {"kind": kind, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    return json.dumps(record) + "\n"


def write_marker(folder: Path, kind: str) -> None:
    (folder / MARKER).write_text(marker_text(kind))


def is_deepiqa_output(folder: Path) -> bool:
    if (folder / MARKER).is_file():
        return True
    return any(all((folder / name).exists() for name in sign) for sign in LEGACY_SIGNS)


def check_replaceable(target: Path) -> None:
    """Refuse to replace ``target`` unless it is a deepiqa output (see the module docstring)."""
    if not target.exists():
        return
    if not target.is_dir() or not is_deepiqa_output(target):
        raise UsageError(
            f"refusing to replace {target}: it is not a deepiqa output (no {MARKER}); "
            "choose another --output, or remove it yourself"
        )


def _local_root(source: str) -> Path | None:
    """The local folder or file an input names (a glob: the folder before its first wildcard)."""
    if is_s3(source) or "://" in source and not source.startswith("file://"):
        return None
    text = source.removeprefix("file://")
    if any(ch in text for ch in GLOB_CHARS):
        text = text[: min(text.find(ch) for ch in GLOB_CHARS if ch in text)]
        text = text.rsplit("/", 1)[0] or "/"
    return Path(os.path.realpath(text or "."))


def check_separate(output: Path, inputs: Iterable[str | Path | None]) -> None:
    """Refuse an ``output`` that is, contains, or lies inside one of the local ``inputs``."""
    out = Path(os.path.realpath(output))
    for source in inputs:
        if source is None:
            continue
        root = _local_root(str(source))
        if root is None:
            continue
        if out == root or root in out.parents or out in root.parents:
            raise UsageError(
                f"--output {output} overlaps the input {source}: outputs must be kept apart "
                "from inputs (a replaced output would delete them)"
            )
