"""The executor side: a pandas UDF that scores image rows with a broadcast model.

Conventions follow Spark's own ``predict_batch_udf``: the weights are read once on the driver
and broadcast; each Python worker loads the model once and keeps it in a process-level cache
(``deepiqa_core.batch.cached_batch_scorer``, keyed by the weights' SHA-256), so a worker that
runs many tasks loads it once; the UDF is an iterator UDF over Arrow batches and returns one
struct per input row, always (a score, or a null score with an error code and message).

``ScoreBatches`` is a plain class defined in the installed library, so Spark pickles it by
reference: executors need ``deepiqa_core`` installed (see infra/README.md), nothing else.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pandas as pd
from pyspark.accumulators import AccumulatorParam

from ..batch import PATCH_COLUMNS, RESULT_FIELDS
from ..options import ScoringOptions

# The UDF's inputs, in order; absent ones are passed as typed nulls.
INPUT_COLUMNS: list[tuple[str, str]] = [
    ("id", "string"),
    ("uri", "string"),
    ("image", "binary"),
    ("ref_uri", "string"),
    ("ref_image", "binary"),
    ("tile_row_start", "int"),
    ("tile_row_stop", "int"),
]


def result_fields(with_patches: bool) -> list[tuple[str, str]]:
    return RESULT_FIELDS + (PATCH_COLUMNS if with_patches else [])


class CountsParam(AccumulatorParam):
    """Accumulator of counts by key (model loads by ``Scorer.compute``, e.g. ``cpu/bf16``)."""

    def zero(self, value: dict) -> dict:
        return {}

    def addInPlace(self, value1: dict, value2: dict) -> dict:  # noqa: N802 (PySpark's name)
        for key, count in value2.items():
            value1[key] = value1.get(key, 0) + count
        return value1


class MaxParam(AccumulatorParam):
    """Accumulator that keeps the largest value added (peak worker memory)."""

    def zero(self, value: int) -> int:
        return 0

    def addInPlace(self, value1: int, value2: int) -> int:  # noqa: N802 (PySpark's name)
        return max(value1, value2)


def _forget_zip_importers() -> None:
    """Drop this worker's cached zip importers and Spark's jars from ``sys.path``.

    Before every task a PySpark worker calls ``importlib.invalidate_caches()``, which makes each
    cached zip importer re-read its archive's directory: PySpark 4 imports itself from
    ``pyspark.zip`` (one importer per subpackage, ~12 after a UDF's imports) and puts
    ``spark-core_*.jar`` (5,269 entries, no Python) on the path. Measured here: 58 ms per task,
    0.06 ms per row at 1,000 rows a task, a sixth of the workers' CPU on cheap rows. The
    importers are a cache (an import that needs one again makes it again) and the jar holds no
    Python, so dropping them at the end of each task costs nothing and spares every later task of
    the worker (workers are reused across tasks).
    """
    import sys
    import zipimport

    for entry in [entry for entry in sys.path if entry.endswith(".jar")]:
        sys.path.remove(entry)
    for key, finder in list(sys.path_importer_cache.items()):
        if isinstance(finder, zipimport.zipimporter) or key.endswith(".jar"):
            del sys.path_importer_cache[key]


@dataclass
class ScoreBatches:
    """The UDF's body (see the module docstring); built by ``BroadcastModel.udf``."""

    weights: Any  # Broadcast[bytes]
    sha256: str
    options: ScoringOptions
    loads: Any  # Accumulator[dict] with CountsParam: model loads by device/precision
    peak_rss_mib: Any  # Accumulator[int] with MaxParam
    torch_threads: int | None = None
    fail_once_marker: str | None = None  # testing aid: see ``_inject_failure``

    def score_batches(
        self,
        batches: Iterator[
            tuple[pd.Series, pd.Series, pd.Series, pd.Series, pd.Series, pd.Series, pd.Series]
        ],
    ) -> Iterator[pd.DataFrame]:
        import resource

        scorer = self._scorer()
        inject = self._inject_failure()
        names = [name for name, _ in INPUT_COLUMNS]
        fields = [name for name, _ in result_fields(self.options.batch.with_patches)]
        for columns in batches:
            frame = pd.DataFrame(dict(zip(names, columns, strict=True)))
            yield scorer.score_frame(frame)[fields]
            if inject:
                open(self.fail_once_marker, "w").close()  # type: ignore[arg-type]
                raise RuntimeError("injected failure (--fail-once-marker)")
        _forget_zip_importers()  # once a task, after its imports: the next task's refresh is cheap
        self.peak_rss_mib.add(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)

    def _scorer(self):
        import torch
        from pyspark import TaskContext

        from ..batch import cached_batch_scorer
        from ..devices import resolve_device

        ctx = TaskContext.get()
        gpus = ctx.resources().get("gpu") if ctx else None
        assigned = gpus.addresses[0] if gpus is not None and gpus.addresses else None
        device = resolve_device(self.options.device, assigned_gpu=assigned)
        if device.type == "cpu":
            torch.set_num_threads(self.torch_threads or (ctx.cpus() if ctx else 1))
        return cached_batch_scorer(
            self.sha256,
            lambda: self.weights.value,
            str(device),
            self.options.batch,
            precision=self.options.precision,
            on_load=lambda scorer: self.loads.add({scorer.compute: 1}),
        )

    def _inject_failure(self) -> bool:
        """Fail the first attempt of partition 0 once (retries and no-duplicate tests)."""
        import os

        from pyspark import TaskContext

        ctx = TaskContext.get()
        return (
            self.fail_once_marker is not None
            and ctx is not None
            and ctx.partitionId() == 0
            and ctx.attemptNumber() == 0
            and not os.path.exists(self.fail_once_marker)
        )
