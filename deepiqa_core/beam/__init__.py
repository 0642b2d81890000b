"""deepiqa on Apache Beam (the ``beam`` extra): the only part of deepiqa_core that imports
apache_beam.

``python jobs/score_beam.py INPUT --output OUT [Beam options]`` scores like
``spark-submit jobs/score.py``: the same inputs, pairing, limits, error codes, output schema and
publishing rules, on DirectRunner/Prism locally, Dataflow or Flink. Modules: ``handler`` (the
``ModelHandler`` that RunInference loads once per worker process), ``pipeline`` (checks, staged
rows, the graph, the summary), ``publish`` (staging folder and rename, or ``_LATEST`` pointer).

For your own pipelines::

    from apache_beam.ml.inference.base import KeyedModelHandler, RunInference
    from deepiqa_core.beam import ScoreModelHandler

    handler = ScoreModelHandler("gs://models/wadiqam-nr.safetensors", sha256, ScoringOptions())
    scored = keyed_rows | RunInference(KeyedModelHandler(handler))  # (key, result dict)
"""

from ..runs.beam_spec import BeamExecution, ScoreBeamSpec
from .handler import ScoreModelHandler, score_batch
from .pipeline import run_score_beam, run_score_beam_job

__all__ = [
    "BeamExecution",
    "ScoreBeamSpec",
    "ScoreModelHandler",
    "run_score_beam",
    "run_score_beam_job",
    "score_batch",
]
