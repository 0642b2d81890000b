"""spark-submit probe: which deepiqa_core do the executors import? (used by test_packaging)"""

import pandas as pd
from pyspark.sql import SparkSession


def where(frames):
    import deepiqa_core

    for frame in frames:
        yield pd.DataFrame({"file": [deepiqa_core.__file__] * len(frame)})


if __name__ == "__main__":
    spark = SparkSession.builder.getOrCreate()
    rows = spark.range(4).repartition(2).mapInPandas(where, "file string").collect()
    print("EXECUTOR_LIBRARY", sorted({r.file for r in rows}))
    spark.stop()
