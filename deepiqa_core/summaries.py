"""Pieces of a run summary that the Spark and Beam jobs both report, in one form.

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


def loads_text(by_compute: dict[str, int]) -> str:
    """``"2 (cpu/bf16 x2)"``: the model-loads figure of a printed summary."""
    detail = ", ".join(f"{k} x{v}" for k, v in sorted(by_compute.items()))
    return f"{sum(by_compute.values())} ({detail or 'none'})"
