"""spark-submit probe: the settings a job's session ends with (used by test_spark_submit)."""

from deepiqa_core.spark.session import QUIET, spark_session

if __name__ == "__main__":
    spark = spark_session("probe", QUIET)
    conf = spark.sparkContext.getConf()
    for key in ("spark.sql.ui.retainedExecutions", "spark.ui.retainedTasks"):
        print("SETTING", key, conf.get(key))
    spark.stop()
