"""python3 jobs/audit_outcome.py STATE: exit by the last audit's outcome (STATE/_OUTCOME).

0 ok, 1 an alert fired, 3 the run failed or no outcome is fresh enough (``--max-age-hours``).
For schedulers that cannot see the audit's exit code (Spark cluster mode): the Airflow DAG's
checks, a Kubernetes CronJob after the ScheduledSparkApplication. It needs neither Spark nor
torch: it loads ``deepiqa_core/audit/outcome.py`` (standard library; boto3 for S3 states) from
the source tree beside ``jobs/`` or from the release zip in ``dist/``, without the package's
``__init__`` (which imports torch).
"""

from __future__ import annotations

import importlib.util
import sys
import zipimport
from pathlib import Path

HOME = Path(__file__).resolve().parents[1]


def outcome_module():
    source = HOME / "deepiqa_core" / "audit" / "outcome.py"
    if source.is_file():
        spec = importlib.util.spec_from_file_location("deepiqa_outcome", source)
    else:
        zips = sorted((HOME / "dist").glob("deepiqa-*.zip"))
        if not zips:
            sys.exit(f"FAILED: neither {source} nor {HOME / 'dist'}/deepiqa-*.zip is here")
        spec = zipimport.zipimporter(f"{zips[-1]}/deepiqa_core/audit").find_spec("outcome")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


if __name__ == "__main__":
    sys.exit(outcome_module().main(prog="python3 jobs/audit_outcome.py"))
