"""The architecture's import rules, checked in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import importlib, pkgutil, sys
import deepiqa_core.cli, deepiqa_core.scoring, deepiqa_core.batch
scoring = {m: m in sys.modules for m in ("pandas", "pyspark", "petastorm")}
import deepiqa_core
for m in pkgutil.walk_packages(deepiqa_core.__path__, "deepiqa_core."):
    importlib.import_module(m.name)
print(scoring, {m: m in sys.modules for m in ("pyspark", "petastorm")})
"""


def test_library_never_imports_spark_and_scoring_needs_no_training_stack():
    done = subprocess.run(
        [sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout.strip()
    assert out == (
        "{'pandas': False, 'pyspark': False, 'petastorm': False} "
        "{'pyspark': False, 'petastorm': False}"
    ), out
