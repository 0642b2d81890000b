"""What an output folder may be: never an input, and replaced only when deepiqa made it.

Every folder deepiqa writes carries ``_DEEPIQA_OUTPUT``, a JSON record of what made it and
when. ``--overwrite`` replaces a folder only if it holds that marker and the marker reads as
deepiqa's (``marker_kind``); anything else is refused as a usage error, so a mistyped
``--output`` can never delete a user's data. Files that merely look like deepiqa's
(``checkpoints/``, ``metrics.jsonl``, ``_COMPLETE``) prove nothing: many tools write those names,
so folders from before the marker existed must be removed by hand. An output that is, contains,
or lies inside an input (the images, the references, the weights) is refused too.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from .errors import UnsupportedUriError, UsageError
from .listing import GLOB_CHARS
from .runs.storage import LocalStorage, Storage, join
from .sources import is_s3, local_path

MARKER = "_DEEPIQA_OUTPUT"


def marker_text(kind: str) -> str:
    record = {"kind": kind, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    return json.dumps(record) + "\n"


def write_marker(folder: Path, kind: str) -> None:
    (folder / MARKER).write_text(marker_text(kind))


def marker_kind(text: str | None) -> str | None:
    """The kind a marker's text names (``score``, ``training-run``, ...), or None when the text
    is not a deepiqa marker (absent, empty, not JSON, no kind)."""
    try:
        record = json.loads(text or "")
    except ValueError:
        return None
    kind = record.get("kind") if isinstance(record, dict) else None
    return kind if isinstance(kind, str) and kind else None


def is_deepiqa_output(storage: Storage, target: str) -> bool:
    """Whether ``target`` holds a marker that reads as deepiqa's, on any storage (the one rule
    of every "may this be replaced?" check: local folders, ``s3://``, Hadoop, Beam)."""
    return marker_kind(storage.read_text(join(target, MARKER))) is not None


def check_replaceable(target: Path) -> None:
    """Refuse to replace ``target`` unless it is a deepiqa output (see the module docstring)."""
    if not target.exists():
        return
    if not target.is_dir() or not is_deepiqa_output(LocalStorage(), str(target)):
        raise UsageError(
            f"refusing to replace {target}: it is not a deepiqa output (no {MARKER}); "
            "choose another --output, or remove it yourself"
        )


def _local_root(source: str) -> Path | None:
    """The local folder or file an input names (a glob: the folder before its first wildcard)."""
    if is_s3(source) or "://" in source and not source.startswith("file://"):
        return None
    try:
        text = str(local_path(source)) if source.startswith("file://") else source
    except UnsupportedUriError:  # file:// of another host: nothing of this machine's
        return None
    if any(ch in text for ch in GLOB_CHARS) and not os.path.lexists(text):  # the listing's rule
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


# --- single files deepiqa writes (``deepiqa score --output`` / ``--map``) ----------------------
MAP_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}
MAP_TAG = "deepiqa quality map"  # PNG "Software" text / JPEG comment of every map deepiqa writes
RESULT_HEADS = ("path,", "path ")  # first line of deepiqa's CSV / table outputs
SNIFF_BYTES = 4096


def is_results_file(path: Path) -> bool:
    """Whether ``path`` reads as a results table ``deepiqa score`` wrote (CSV, table or JSON),
    from its first bytes: the header deepiqa writes, or a JSON list of rows with a path."""
    with open(path, "rb") as f:
        head = f.read(SNIFF_BYTES).decode("utf-8", errors="replace")
    if head.startswith(RESULT_HEADS):
        return True
    text = head.lstrip()
    return text.startswith("[") and ('"path":' in text or text.rstrip() == "[]")


def is_map_file(path: Path) -> bool:
    """Whether ``path`` is a quality map deepiqa wrote (its PNG text or JPEG comment)."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            tag = img.info.get("Software") or img.info.get("comment")
    except Exception:  # noqa: BLE001 - unreadable: not ours
        return False
    if isinstance(tag, bytes):
        tag = tag.decode(errors="replace")
    return tag == MAP_TAG


def check_output_file(
    target: str,
    flag: str,
    inputs: Iterable[str | Path | None],
    ours: Callable[[Path], bool],
) -> None:
    """Refuse, before any work, a file target that could not be written or would destroy
    something: empty, a folder, in a folder that does not exist, one of the ``inputs`` (images,
    references, manifest, weights), or an existing file that ``ours`` does not recognise as
    deepiqa's own (rewriting deepiqa's earlier result is fine)."""
    if not target:
        raise UsageError(f"{flag} needs a file path")
    path = Path(target)
    if path.is_dir():
        raise UsageError(f"{flag} {target} is a folder; name a file")
    parent = path.absolute().parent
    if not parent.is_dir():
        raise UsageError(f"{flag} {target}: the folder {parent} does not exist")
    real = Path(os.path.realpath(path))
    for source in inputs:
        if source is not None and _local_root(str(source)) == real:
            raise UsageError(f"{flag} {target} is one of the inputs ({source}); write elsewhere")
    if path.exists() and not ours(path):
        raise UsageError(
            f"refusing to replace {target}: deepiqa did not write it; choose another {flag}"
        )
