"""python3 jobs/audit_outcome.py STATE: exit by the last audit's outcome (STATE/_OUTCOME).

0 ok, 1 an alert fired, 3 the run failed or no outcome is fresh enough (``--max-age-hours``).
For schedulers that cannot see the audit's exit code (Spark cluster mode): the Airflow DAG's
checks, a Kubernetes CronJob after the ScheduledSparkApplication. Needs neither Spark nor torch
(``deepiqa_core.audit.outcome`` is standard library; boto3 for S3 states): run it with the
release zip on the path, ``PYTHONPATH=dist/deepiqa-<version>-py3-none-any.zip``, where deepiqa
is not installed.
"""

from __future__ import annotations

import sys

from deepiqa_core.audit.outcome import main

if __name__ == "__main__":
    sys.exit(main(prog="python3 jobs/audit_outcome.py"))
