"""The scoring UDF's worker hygiene: PySpark's per-task import-cache refresh stays cheap."""

import importlib
import sys
import zipfile
import zipimport

from deepiqa_core.spark.udf import _forget_zip_importers


def test_zip_importers_and_jars_are_forgotten_and_zipped_modules_still_import(
    tmp_path, monkeypatch
):
    archive = tmp_path / "lib.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("zipped_pkg/__init__.py", "")
        z.writestr("zipped_pkg/first.py", "VALUE = 1\n")
        z.writestr("zipped_pkg/second.py", "VALUE = 2\n")
    jar = tmp_path / "spark-core.jar"
    with zipfile.ZipFile(jar, "w") as z:
        z.writestr("org/Main.class", b"\xca\xfe")
    monkeypatch.setattr(sys, "path", [str(archive), *sys.path, str(jar)])
    monkeypatch.setattr(sys, "path_importer_cache", dict(sys.path_importer_cache))
    for name in ("zipped_pkg", "zipped_pkg.first", "zipped_pkg.second"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    importlib.import_module("zipped_pkg.first")
    assert any(isinstance(f, zipimport.zipimporter) for f in sys.path_importer_cache.values())

    _forget_zip_importers()

    assert str(jar) not in sys.path and str(archive) in sys.path
    assert not any(isinstance(f, zipimport.zipimporter) for f in sys.path_importer_cache.values())
    assert importlib.import_module("zipped_pkg.second").VALUE == 2  # found again on demand
