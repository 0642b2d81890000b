"""Airflow 3 DAG: the nightly DeepIQA audit of the media library (``jobs/audit.py``).

Put this file in the DAGs folder (or a DAG bundle) of an Airflow 3 deployment that has
``apache-airflow-providers-apache-spark`` (``constraints-airflow.txt`` pins a tested set). The
task runs ``spark-submit`` on the Airflow worker, so each worker needs:

* ``spark-submit`` on its PATH with the cluster's client configuration (``HADOOP_CONF_DIR`` for
  YARN). The provider's own dependency, ``pyspark-client``, is Spark Connect only and brings no
  ``spark-submit``.
* A copy of the deepiqa release at ``DEEPIQA_HOME``: ``jobs/audit.py``, the library zip built
  by ``bash infra/build_wheel.sh`` (``dist/deepiqa-<version>-py3-none-any.zip``) and the weights
  (``models/wadiqam-nr.safetensors``). In cluster deploy mode spark-submit uploads all three to
  the cluster, so nothing else of deepiqa is needed on the worker; the executors' Python comes
  from the cluster (see infra/README.md).
* The Airflow connection ``spark_default``, which decides where the job runs: its host is the
  Spark master and its ``deploy-mode`` extra the deploy mode, e.g.
  ``AIRFLOW_CONN_SPARK_DEFAULT='{"conn_type": "spark", "host": "yarn",
  "extra": {"deploy-mode": "cluster"}}'``. With that connection the task runs exactly the
  command in the README ("Nightly audit"), with the paths under ``DEEPIQA_HOME``;
  tests/test_schedulers.py checks this with the provider's own SparkSubmitHook.

Three tasks, so that the on-call tells an alert from a broken job by the task that failed:

* ``audit``: spark-submit of the audit. In cluster deploy mode spark-submit exits 1 for any
  failed application, so this task's own state cannot say why it failed; the DAG run's outcome
  comes from the two checks after it.
* ``check_run`` (runs whatever ``audit`` did): reads ``STATE/_OUTCOME``, which the audit writes
  whenever it held the state (``deepiqa_core.audit.outcome``), and fails when the run failed or
  left no fresh outcome (killed, never started, timed out): **the job is broken**.
* ``check_alerts`` (after ``check_run`` succeeded): fails when an alert rule fired; its log
  names each rule, its value, whether it is new or firing since an earlier run, and the report:
  **the library needs attention**.

The checks run ``python3 jobs/audit_outcome.py`` from ``DEEPIQA_HOME`` with the release zip on
``PYTHONPATH`` (the outcome reader is standard library only; boto3 for an ``s3a://``/``s3://``
state with the worker's AWS credentials), so the worker needs ``python3`` and, for S3, boto3
(the Amazon provider brings it); neither Spark nor torch.

Settings are environment variables read when the file is parsed, not Airflow Variables: in
Airflow 3 a ``Variable.get`` at parse time goes to the API server or the metadata database on
every parse, and the DAG processor and the workers both parse this file. Set them in the
environment of both (they fall back to the production defaults below).
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

DEEPIQA_HOME = os.environ.get("DEEPIQA_HOME", "/opt/deepiqa")
LIBRARY = os.environ.get("DEEPIQA_AUDIT_LIBRARY", "s3a://media/library/")
STATE = os.environ.get("DEEPIQA_AUDIT_STATE", "s3a://media/deepiqa/audit")
# The weights file, on the Airflow worker. spark-submit ships it (--files) and the job is given
# its bare name (--weights NAME): in cluster deploy mode the driver finds it in its working
# folder, in client mode in SparkFiles' folder (deepiqa_core.spark.session.driver_file), so the
# same task works with either kind of connection.
WEIGHTS = os.environ.get(
    "DEEPIQA_AUDIT_WEIGHTS", os.path.join(DEEPIQA_HOME, "models", "wadiqam-nr.safetensors")
)
# the zip infra/build_wheel.sh writes; the version is the one in pyproject.toml
PY_FILES = os.path.join(DEEPIQA_HOME, "dist", "deepiqa-0.1.0-py3-none-any.zip")
PYTHON = os.environ.get("DEEPIQA_PYTHON", "python3")  # for the outcome checks, on the worker
# An outcome older than this when the checks run is "tonight's audit did not finish": longer
# than the audit task's execution_timeout (below), shorter than a day.
OUTCOME_MAX_AGE_HOURS = 13

# Alert rules: when one fires the job still publishes the run (report at
# STATE/runs/<run_id>/report.html, STATE/_LATEST names it) and exits 1.
# Relative rules (README "Suggested alerts"): the NR default's absolute scores depend on content
# (clean photos score from near 0 to 100), so p10<T fires on clean libraries; these do not.
ALERTS = ["error_rate>0.01", "median_drop>5", "worse(15)>0"]

AUDIT_ARGS = [LIBRARY, "--state", STATE, "--weights", os.path.basename(WEIGHTS)]
for rule in ALERTS:
    AUDIT_ARGS += ["--alert", rule]

with DAG(
    dag_id="deepiqa_nightly_audit",
    description="DeepIQA quality audit of the media library: check_run fails when the job is "
    "broken, check_alerts when an alert rule fired",
    schedule="0 2 * * *",  # 02:00 UTC every night
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    # A missed night is not made up: each audit looks at the library as it is now, so running
    # the skipped dates later would only repeat today's audit several times.
    catchup=False,
    # Concurrent audits on one STATE are not supported (each publishes a run and compares it with
    # the previous one), so a late run holds back the next night's instead of overlapping it.
    max_active_runs=1,
    tags=["deepiqa", "audit"],
    doc_md=__doc__,
) as dag:
    audit = SparkSubmitOperator(
        task_id="audit",
        conn_id="spark_default",  # master and deploy mode come from the connection
        application=os.path.join(DEEPIQA_HOME, "jobs", "audit.py"),
        application_args=AUDIT_ARGS,
        files=WEIGHTS,
        py_files=PY_FILES,
        name="deepiqa-audit",
        conf={
            # YARN re-runs a failed application master (yarn.resourcemanager.am.max-attempts,
            # default 2) and in cluster mode the driver runs inside it. An alert IS a failed
            # application (exit 1), so a second attempt would publish a second run, and
            # median_drop would then compare it with the alerting run and may pass: the
            # alert would end as a green task. One attempt per submission.
            "spark.yarn.maxAppAttempts": "1",
        },
        # Failing and retrying. The provider raises when spark-submit exits non-zero
        # (SparkSubmitHook.submit), so a fired alert (job exit 1) fails the task and Airflow's
        # failure notifications (e-mail, on_failure_callback, whatever the deployment uses)
        # are the alert. Nothing is retried automatically, although exit 3 ("could not run",
        # nothing published, state untouched) would be safe to retry:
        # * in cluster deploy mode spark-submit reports only that the application failed and
        #   exits 1 whatever the driver's exit code was, so the task cannot tell an alert (1)
        #   from a run that could not be done (3) or a lost cluster;
        # * retrying an alert re-runs the audit, which publishes again and can clear the alert
        #   (above). Missing a night is the smaller harm: after exit 3 the state is untouched,
        #   so clearing the task in the UI reruns it safely, and tomorrow's run audits anyway.
        retries=0,
        # durable=True, the provider's default on Airflow >= 3.3, makes the task raise
        # ValueError on a YARN cluster-mode connection unless yarn_track_via_rm_api=True (and
        # the ResourceManager's address in the connection), which submits with
        # spark.yarn.submit.waitAppCompletion=false and polls YARN instead. Off: the task holds
        # spark-submit until the application ends, as the README command does, and
        # spark-submit's exit status is the task's outcome.
        durable=False,
        # A hung audit would hold back every following night (max_active_runs=1). On timeout
        # Airflow kills the task, and the provider kills spark-submit and the YARN application it
        # started (`yarn application -kill`, which needs the `yarn` CLI on the worker).
        execution_timeout=timedelta(hours=12),
        doc_md=(
            f"Audit of `{LIBRARY}`. Whether it failed because an alert fired or because it "
            "could not run is told by `check_run` and `check_alerts` (this task's state cannot: "
            "in cluster mode spark-submit exits 1 for both)."
        ),
    )
    outcome = (
        f"PYTHONPATH={PY_FILES} {PYTHON} {os.path.join(DEEPIQA_HOME, 'jobs', 'audit_outcome.py')} "
        f"{STATE} "
        f"--max-age-hours {OUTCOME_MAX_AGE_HOURS}"
    )
    check_run = BashOperator(
        task_id="check_run",
        # exit 3: the run failed, or no fresh outcome: the audit job is broken
        bash_command=f"{outcome}; test $? -ne 3",
        trigger_rule="all_done",  # runs however the audit task ended
        retries=0,
        doc_md=f"Fails when the audit could not run (nothing published): `{STATE}/_OUTCOME`.",
    )
    check_alerts = BashOperator(
        task_id="check_alerts",
        # exit 1: an alert rule fired (the run is published; the log names the report)
        bash_command=f"{outcome}; test $? -ne 1",
        retries=0,
        doc_md=f"Fails when an alert rule fired: report at `{STATE}/runs/<run_id>/report.html`.",
    )
    audit >> check_run >> check_alerts
