"""What a run is, whichever engine runs it (Spark, Beam, the audit): typed records that cross
module boundaries, Spark-free and Beam-free. JSON only at the edge (``to_json``/``from_json``),
each record with a ``schema_version``."""

from .summary import PERCENTILES, SCHEMA_VERSION, RunSummary, ScoreStats

__all__ = ["PERCENTILES", "SCHEMA_VERSION", "RunSummary", "ScoreStats"]
