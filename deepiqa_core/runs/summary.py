"""A scoring run's summary, one record for the Spark and the Beam job alike.

The engines differ only in how they count (Spark aggregates the published table with
``approxQuantile``; Beam reads the score column back and takes exact percentiles, so it states a
rank error of 0) and in a few facts of their own (``engine_facts``: Spark's chunks, partitions
and worker memory; Beam's runner and batches). ``summary.json`` is ``to_json()``: flat, the keys
users' tooling already reads, plus ``schema_version`` and ``engine``.

Model loads are counted by ``Scorer.compute`` (``cpu/fp32``, ``cpu/bf16``, ``cuda/bf16`` ...):
``--precision auto`` resolves on each worker's own hardware, so only the workers can say which
precision produced the scores, and a run on mixed hardware shows it.
"""

from __future__ import annotations

import platform
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from ..exits import ExitCode, threshold_code

SCHEMA_VERSION = 1
PERCENTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
# Beam counter names: this prefix + Scorer.compute (Spark uses a dict accumulator instead).
LOADS_COUNTER_PREFIX = "model_loads:"


def percentile_keys() -> list[str]:
    """``p5``, ``p25`` ... : the names of ``PERCENTILES`` in a summary."""
    return [f"p{round(q * 100)}" for q in PERCENTILES]


@dataclass(frozen=True)
class ScoreStats:
    """Counts, errors by code and the score distribution of a run's written scores."""

    rows_in: int
    rows_out: int
    scored: int
    failed: int
    errors_by_code: dict[str, int]
    out_of_range: int
    score_mean: float | None
    score_percentiles: dict[str, float]
    percentile_rank_error: float  # 0.0: exact

    @classmethod
    def build(
        cls,
        *,
        rows_in: int,
        rows_out: int,
        scored: int,
        errors: dict[str, int],
        out_of_range: int,
        mean: float | None,
        quantiles: list[float],
        rank_error: float,
    ) -> ScoreStats:
        """From an engine's counts; ``quantiles`` at ``PERCENTILES`` (empty: nothing scored)."""
        return cls(
            rows_in=int(rows_in),
            rows_out=int(rows_out),
            scored=int(scored),
            failed=int(sum(errors.values())),
            errors_by_code={k: int(v) for k, v in sorted(errors.items())},
            out_of_range=int(out_of_range),
            score_mean=None if mean is None else float(mean),
            score_percentiles={
                k: float(v) for k, v in zip(percentile_keys(), quantiles, strict=False)
            },
            percentile_rank_error=rank_error,
        )

    @property
    def error_rate(self) -> float:
        return self.failed / self.rows_in if self.rows_in else 0.0


@dataclass(frozen=True)
class RunSummary:
    """What one scoring run did: written as ``summary.json``, printed by ``text``."""

    engine: str  # "spark" | "beam"
    model: str
    model_sha256: str
    run_id: str
    started_at: str
    finished_at: str
    stats: ScoreStats
    seconds: float
    model_loads_by_compute: dict[str, int]
    output: str  # where readers find the result
    publish: str  # "rename" | "pointer"
    input: dict[str, str | None]
    arguments: dict[str, Any]
    versions: dict[str, str]
    engine_facts: dict[str, Any] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    @property
    def images_per_second(self) -> float | None:
        return round(self.stats.rows_in / self.seconds, 2) if self.seconds > 0 else None

    @property
    def model_loads(self) -> int:
        return sum(self.model_loads_by_compute.values())

    def to_json(self) -> dict[str, Any]:
        """The flat ``summary.json`` record."""
        head = {
            "schema_version": self.schema_version,
            "engine": self.engine,
            "model": self.model,
            "model_sha256": self.model_sha256,
            "run_id": self.run_id,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
        }
        return {
            **head,
            **asdict(self.stats),
            "seconds": self.seconds,
            "images_per_second": self.images_per_second,
            "model_loads": self.model_loads,
            "model_loads_by_compute": dict(sorted(self.model_loads_by_compute.items())),
            **self.engine_facts,
            "output": self.output,
            "publish": self.publish,
            "input": self.input,
            "arguments": self.arguments,
            "versions": self.versions,
        }

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> RunSummary:
        """A ``summary.json`` record back (derived keys recomputed, the rest engine facts)."""
        stat_names = {f.name for f in fields(ScoreStats)}
        own = {f.name for f in fields(cls)} - {"stats", "engine_facts"}
        derived = {"images_per_second", "model_loads"}
        return cls(
            stats=ScoreStats(**{k: record[k] for k in stat_names}),
            engine_facts={k: v for k, v in record.items() if k not in stat_names | own | derived},
            **{k: record[k] for k in own if k in record},
        )

    def error_rate_verdict(self, max_error_rate: float | None) -> tuple[ExitCode, str | None]:
        """The exit code for ``--max-error-rate`` and the line that explains a breach."""
        code = threshold_code(self.stats.failed, self.stats.rows_in, max_error_rate)
        if code == ExitCode.OK:
            return code, None
        line = f"  error rate {self.stats.error_rate:.3f} exceeds --max-error-rate {max_error_rate}"
        return code, line

    def text(self, title: str, loads_where: str) -> str:
        """The printed summary: ``title`` names the job, ``loads_where`` ends the model-loads
        line with what only that engine knows (partitions and worker memory, or batches)."""
        s = self.stats
        lines = [
            f"{title}: {s.rows_in} images with {self.model} ({self.model_sha256[:12]}) in "
            f"{self.seconds} s, {self.images_per_second} images/s"
        ]
        errors = ", ".join(f"{k} {v}" for k, v in s.errors_by_code.items()) or "none"
        lines.append(f"  scored {s.scored}, failed {s.failed} ({errors})")
        if s.out_of_range:
            lines.append(
                f"  warning: {s.out_of_range} score(s) outside the model's declared range "
                "(in_range = false): the network is extrapolating"
            )
        if s.score_percentiles:
            pct = s.score_percentiles.values()
            lines.append("  score p5/p25/p50/p75/p95: " + " / ".join(f"{v:.2f}" for v in pct))
        lines.append(f"  model loads: {loads_text(self.model_loads_by_compute)} {loads_where}")
        lines.append(f"  output: {self.output}")
        return "\n".join(lines)


def loads_by_compute(counters: dict[str, int]) -> dict[str, int]:
    """``{compute: loads}`` from counters named ``LOADS_COUNTER_PREFIX + compute``."""
    n = len(LOADS_COUNTER_PREFIX)
    return {k[n:]: v for k, v in sorted(counters.items()) if k.startswith(LOADS_COUNTER_PREFIX)}


def loads_text(by_compute: dict[str, int]) -> str:
    """``"2 (cpu/bf16 x2)"``: the model-loads figure of a printed summary."""
    detail = ", ".join(f"{k} x{v}" for k, v in sorted(by_compute.items()))
    return f"{sum(by_compute.values())} ({detail or 'none'})"


def versions(**engines: str) -> dict[str, str]:
    """The versions a summary records: deepiqa, Python, the engine(s) given (``spark=``,
    ``apache_beam=``), torch, numpy, pandas, pyarrow (imported here: only a run calls it)."""
    import numpy
    import pandas
    import pyarrow
    import torch

    from .. import __version__

    return {
        "deepiqa": __version__,
        "python": platform.python_version(),
        **engines,
        "torch": str(torch.__version__),
        "numpy": numpy.__version__,
        "pandas": pandas.__version__,
        "pyarrow": pyarrow.__version__,
    }
