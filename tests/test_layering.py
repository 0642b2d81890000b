"""The architecture's import rules: only deepiqa_core.spark imports Spark and only
deepiqa_core.beam imports Beam; scoring needs neither pandas nor Petastorm; jobs are thin entry
points over the library."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ROOT / "deepiqa_core"
SPARK = LIBRARY / "spark"
BEAM = LIBRARY / "beam"

CHECK = """
import importlib, pathlib, sys
import deepiqa_core.cli, deepiqa_core.scoring, deepiqa_core.batch
scoring = {m: m in sys.modules for m in ("pandas", "pyspark", "petastorm")}
root = pathlib.Path(deepiqa_core.__file__).parent
for path in sorted(root.rglob("*.py")):
    parts = path.relative_to(root.parent).with_suffix("").parts
    if parts[1] not in ("spark", "beam") and parts[-1] != "__main__":
        importlib.import_module(".".join(parts).removesuffix(".__init__"))
print(scoring, {m: m in sys.modules for m in ("pyspark", "petastorm", "apache_beam")})
"""


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at any depth (lazy imports inside functions too)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_only_the_spark_subpackage_imports_pyspark():
    offenders = [
        str(path.relative_to(ROOT))
        for path in sorted(LIBRARY.rglob("*.py"))
        if SPARK not in path.parents
        and any(m.split(".")[0] == "pyspark" for m in imported_modules(path))
    ]
    assert offenders == []
    assert any("pyspark" in m for m in imported_modules(SPARK / "udf.py"))  # the scan works


def test_only_the_beam_subpackage_imports_apache_beam():
    offenders = [
        str(path.relative_to(ROOT))
        for path in sorted(LIBRARY.rglob("*.py"))
        if BEAM not in path.parents
        and any(m.split(".")[0] == "apache_beam" for m in imported_modules(path))
    ]
    assert offenders == []
    assert any("apache_beam" in m for m in imported_modules(BEAM / "handler.py"))  # scan works


def test_library_outside_spark_loads_without_spark_and_scoring_without_training_stack():
    done = subprocess.run(
        [sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout.strip()
    assert out == (
        "{'pandas': False, 'pyspark': False, 'petastorm': False} "
        "{'pyspark': False, 'petastorm': False, 'apache_beam': False}"
    ), out


def test_jobs_are_thin_entry_points():
    for job in sorted((ROOT / "jobs").glob("*.py")):
        text = job.read_text()
        assert len(text.splitlines()) < 150, job.name
        assert "sys.path" not in text and "noqa: E402" not in text, job.name
        assert {m.split(".")[0] for m in imported_modules(job)} <= {
            "__future__",
            "argparse",
            "shlex",
            "sys",
            "pathlib",
            "deepiqa_core",
        }, job.name
