"""deepiqa on Spark (the ``spark`` extra): the only part of deepiqa_core that imports pyspark.

For users' own pipelines::

    from deepiqa_core.spark import aggregate_patches, explode_patches, score_images

    scored = score_images(df, "wadiqam-nr.safetensors", uri_col="path", with_patches=True)
    patches = explode_patches(scored, id_col="path")       # one row per patch
    aggregate_patches(patches.where("y < 512"))            # pooled scores of a region

Modules: ``scoring`` (``score_images``, ``BroadcastModel``), ``udf`` (the executor side),
``inputs`` / ``pairing`` (listing, manifests, the FR join), ``tiles``, ``patches``, ``summary``
(a run's numbers from its scores table), ``storage`` (``HadoopStorage``: outputs through the
cluster's Hadoop file system layer; ``storage_for`` picks it or boto3 for ``s3://``),
``publish`` (the run protocol of ``deepiqa_core.runs.publish`` on those storages), ``export``
(the executor-side S3 writer and reader), ``session`` (every job's ``main``), one module per
job: ``score_job``, ``evaluate_job``, ``synthesize_job``, ``train_job``; and ``audit/``, the
audit's Spark side beside the Spark-free ``deepiqa_core.audit``: ``job`` (the run, step by step),
``state`` (the state folder), ``library`` (listing and versions), ``stats`` (statistics and what
changed), ``numbers`` (the run's ``AuditSummary``), ``report`` (the report's inputs).
"""

from .inputs import read_inputs
from .pairing import attach_references
from .patches import aggregate_patches, explode_patches
from .scoring import BroadcastModel, score_images

__all__ = [
    "BroadcastModel",
    "aggregate_patches",
    "attach_references",
    "explode_patches",
    "read_inputs",
    "score_images",
]
