"""A Beam run's numbers, read back from the scores it wrote (mirrors ``spark/summary.py``).

The launcher reads only the columns it needs, so the percentiles are exact (``rank_error`` 0),
unlike Spark's ``approxQuantile``; both fill the same ``ScoreStats``.
"""

from __future__ import annotations

import io

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..runs import PERCENTILES, RunSummary, ScoreStats
from ..runs.publish import Run
from .handler import read_uri
from .storage import files_under

SCORES = "scores"


def read_scores(run: Run, columns: list[str]) -> pa.Table:
    """Columns of the written scores (only these are read, from every output file)."""
    files = [f for f in files_under(run.path(SCORES)) if f.endswith(".parquet")]
    tables = [pq.read_table(io.BytesIO(read_uri(uri)), columns=columns) for uri in files]
    if not tables:
        return pa.table({c: pa.array([], pa.string()) for c in columns})
    return pa.concat_tables(tables)


def score_stats(scores: pa.Table, rows_in: int) -> ScoreStats:
    """Counts, errors by code and exact score percentiles of the written scores."""
    errors: dict[str, int] = {}
    for code in scores.column("error_code").to_pylist():
        if code is not None:
            errors[code] = errors.get(code, 0) + 1
    values = np.array([v for v in scores.column("score").to_pylist() if v is not None], float)
    in_range = scores.column("in_range").to_pylist()
    return ScoreStats.build(
        rows_in=rows_in,
        rows_out=scores.num_rows,
        scored=len(values),
        errors=errors,
        out_of_range=sum(1 for v in in_range if v is False),
        mean=float(values.mean()) if len(values) else None,
        quantiles=(
            np.quantile(values, PERCENTILES, method="inverted_cdf").tolist() if len(values) else []
        ),
        rank_error=0.0,  # exact: the launcher reads the score column back
    )


def format_beam_summary(summary: RunSummary) -> str:
    """The lines the job prints (the same facts as the Spark job's)."""
    facts = summary.engine_facts
    return summary.text(
        f"deepiqa score (Beam, {facts['runner']})",
        f"for {facts['batches']} batches of at most "
        f"{summary.arguments['execution']['max_batch_rows']} rows",
    )
