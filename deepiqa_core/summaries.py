"""Pieces of a run summary that the Spark and Beam jobs both report, in one form: the lines
they print (``format_summary``) and model loads by where and how the model ran.

Model loads are counted by ``Scorer.compute`` (``cpu/fp32``, ``cpu/bf16``, ``cuda/bf16`` ...):
``--precision auto`` resolves on each worker's own hardware, so only the workers can say which
precision produced the scores, and a run on mixed hardware shows it.
"""

from __future__ import annotations

# Beam counter names: this prefix + Scorer.compute (Spark uses a dict accumulator instead).
LOADS_COUNTER_PREFIX = "model_loads:"


def loads_by_compute(counters: dict[str, int]) -> dict[str, int]:
    """``{compute: loads}`` from counters named ``LOADS_COUNTER_PREFIX + compute``."""
    n = len(LOADS_COUNTER_PREFIX)
    return {k[n:]: v for k, v in sorted(counters.items()) if k.startswith(LOADS_COUNTER_PREFIX)}


def format_summary(summary: dict, title: str, loads_where: str) -> str:
    """The printed summary: ``title`` names the job, ``loads_where`` ends the model-loads line
    with what only that job knows (partitions and worker memory, or batches)."""
    lines = [
        f"{title}: {summary['rows_in']} images with {summary['model']} "
        f"({summary['model_sha256'][:12]}) in {summary['seconds']} s, "
        f"{summary['images_per_second']} images/s"
    ]
    errors = ", ".join(f"{k} {v}" for k, v in summary["errors_by_code"].items()) or "none"
    lines.append(f"  scored {summary['scored']}, failed {summary['failed']} ({errors})")
    if summary["out_of_range"]:
        lines.append(
            f"  warning: {summary['out_of_range']} score(s) outside the model's declared range "
            "(in_range = false): the network is extrapolating"
        )
    if summary["score_percentiles"]:
        pct = summary["score_percentiles"].values()
        lines.append("  score p5/p25/p50/p75/p95: " + " / ".join(f"{v:.2f}" for v in pct))
    lines.append(f"  model loads: {loads_text(summary['model_loads_by_compute'])} {loads_where}")
    lines.append(f"  output: {summary['output']}")
    return "\n".join(lines)


def loads_text(by_compute: dict[str, int]) -> str:
    """``"2 (cpu/bf16 x2)"``: the model-loads figure of a printed summary."""
    detail = ", ".join(f"{k} x{v}" for k, v in sorted(by_compute.items()))
    return f"{sum(by_compute.values())} ({detail or 'none'})"
