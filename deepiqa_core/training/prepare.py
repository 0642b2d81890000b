"""Before training: split a manifest by reference and turn it into Parquet examples.

The Spark job spreads ``fetch_examples`` over executors; ``prepare_local`` runs the same
function in this process. Either way ``DATA/train``, ``DATA/val``, ``DATA/test`` hold the
examples, ``DATA/rejected.parquet`` the rows that could not be used (with their error codes), and
``DATA/prepared.json`` what was prepared from what, so ``--resume`` reuses the data only when
the manifest and split settings are unchanged.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from ..datasets import DatasetError, split_by_reference
from ..datasets.splits import SPLITS
from ..errors import UsageError
from .examples import EXAMPLE_COLUMNS, fetch_examples

if TYPE_CHECKING:
    import pandas as pd

PREPARED = "prepared.json"
REJECTED = "rejected.parquet"


def manifest_fingerprint(manifest: pd.DataFrame) -> str:
    import pandas as pd

    hashed = pd.util.hash_pandas_object(manifest.astype(str), index=False).to_numpy()
    return hashlib.sha256(hashed.tobytes()).hexdigest()


def with_splits(
    manifest: pd.DataFrame, fractions: tuple[float, float, float], seed: int
) -> pd.DataFrame:
    """The manifest with a stable ``row_id`` (its row order) and a ``split`` column.

    A manifest that already has a ``split`` column (train/val/test: an official split, or
    photos held out on purpose) keeps it; otherwise references are split by ``fractions``.
    """
    out = manifest.reset_index(drop=True).copy()
    out.insert(0, "row_id", range(len(out)))
    if "split" in out.columns:
        unknown = set(out["split"]) - set(SPLITS)
        if unknown:
            raise DatasetError(f"the manifest's split column has {sorted(unknown)}; use {SPLITS}")
        shared = out.groupby("ref_id")["split"].nunique()
        if (shared > 1).any():
            raise DatasetError(f"references in two splits: {list(shared[shared > 1].index[:5])}")
        return out
    out["split"] = split_by_reference(out, fractions, seed).to_numpy()
    return out


def label_meta(manifest: pd.DataFrame) -> dict:
    """What the trained model's score means: the labels' direction and range (one of each)."""
    directions = manifest["score_direction"].unique().tolist()
    ranges = manifest[["score_min", "score_max"]].drop_duplicates().to_numpy().tolist()
    if len(directions) != 1 or len(ranges) != 1:
        raise DatasetError(
            f"training labels mix scales (directions {directions}, ranges {ranges}); map them "
            "onto one scale in the manifest first"
        )
    datasets = sorted(manifest["dataset"].astype(str).unique())
    kind = "quality" if directions[0] == "higher_better" else "degradation"
    return {
        "score_direction": directions[0],
        "score_range": [float(v) for v in ranges[0]],
        "score_name": f"{kind} on the {'+'.join(datasets)} label scale",
    }


def prepared_record(manifest: pd.DataFrame, fractions, seed: int, full_reference: bool) -> dict:
    return {
        "manifest_sha256": manifest_fingerprint(manifest),
        "fractions": list(fractions),
        "split_seed": seed,
        "full_reference": full_reference,
    }


def check_prepared(data_dir: Path, record: dict) -> dict | None:
    """The saved record when ``data_dir`` already holds exactly this preparation, None when it
    holds none; an error when it holds another."""
    path = data_dir / PREPARED
    if not path.exists():
        return None
    saved = json.loads(path.read_text())
    if {k: saved.get(k) for k in record} != record:
        raise UsageError(
            f"{data_dir} was prepared from a different manifest or split; start a new run"
        )
    return saved


def finish_prepared(data_dir: Path, record: dict, counts: dict, rejected: dict) -> dict:
    full = {**record, "rows": counts, "rejected": rejected}
    (data_dir / PREPARED).write_text(json.dumps(full, indent=2))
    return full


def prepare_local(
    split_manifest: pd.DataFrame, data_dir: Path, record: dict, rows_per_file: int = 64
) -> dict:
    """Fetch, check and write the examples in this process (the single-process path)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    counts: dict = {}
    rejected: Counter[str] = Counter()
    bad = []
    for split in SPLITS:
        part = split_manifest[split_manifest["split"] == split]
        folder = data_dir / split
        folder.mkdir(parents=True, exist_ok=True)
        good = 0
        for n, start in enumerate(range(0, len(part), rows_per_file)):
            rows = fetch_examples(
                part.iloc[start : start + rows_per_file], record["full_reference"]
            )
            failed = rows["error_code"].notna()
            bad.append(rows[failed].drop(columns=["image", "ref_image"]))
            rejected.update(rows.loc[failed, "error_code"])
            rows = rows[~failed]
            if len(rows):
                table = pa.Table.from_pandas(rows, schema=example_schema(), preserve_index=False)
                pq.write_table(table, folder / f"part-{n:05d}.parquet")
                good += len(rows)
        counts[split] = good
    import pandas as pd

    pd.concat(bad, ignore_index=True).to_parquet(data_dir / REJECTED, index=False)
    return finish_prepared(data_dir, record, counts, dict(rejected))


def example_schema():
    import pyarrow as pa

    types = {
        "bigint": pa.int64(),
        "string": pa.string(),
        "double": pa.float64(),
        "int": pa.int32(),
        "binary": pa.binary(),
    }
    return pa.schema([(name, types[t]) for name, t in EXAMPLE_COLUMNS])
