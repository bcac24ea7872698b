"""The export step of the deployed form: the data files and dispatch files land whatever a view does."""

from __future__ import annotations

import json

from pipeline.services import exports, support
from tests.services.conftest import CLOSED

DATA = ["allocations.csv", "deliveries.csv", "rejections.csv", "summary.json"]


def test_an_export_whose_report_fails_writes_every_data_file_and_records_the_failure_on_the_run(
        db, prepared, tmp_path, monkeypatch):
    import pipeline.services.outputs as outputs

    monkeypatch.setattr(outputs, "write_report", lambda *a, **k: (_ for _ in ()).throw(ValueError("no chart")))
    folder = exports.export_run(db, prepared, tmp_path, CLOSED)
    for name in DATA:
        assert (folder / name).is_file(), name
    index = json.loads((folder / "manifests" / "index.json").read_text(encoding="utf-8"))
    assert index["files"] and all((folder / "manifests" / f["path"]).is_file() for f in index["files"])
    assert not (folder / "report.html").exists()
    session = json.loads((folder / "summary.json").read_text(encoding="utf-8"))["session"]
    assert support.list_runs(db, session)[0]["view_failure"] == "report.html: ValueError: no chart"
    assert (tmp_path / session / "latest").resolve() == folder.resolve()


def test_a_later_export_that_writes_the_report_clears_the_recorded_failure(db, prepared, tmp_path, monkeypatch):
    import pipeline.services.outputs as outputs

    drawn = outputs.write_report
    monkeypatch.setattr(outputs, "write_report", lambda *a, **k: (_ for _ in ()).throw(ValueError("no chart")))
    folder = exports.export_run(db, prepared, tmp_path, CLOSED)
    monkeypatch.setattr(outputs, "write_report", drawn)
    assert exports.export_run(db, prepared, tmp_path, CLOSED) == folder
    assert (folder / "report.html").is_file()
    session = json.loads((folder / "summary.json").read_text(encoding="utf-8"))["session"]
    assert support.list_runs(db, session)[0]["view_failure"] is None


def test_a_report_that_fails_on_a_later_export_is_not_left_from_the_earlier_one(db, prepared, tmp_path, monkeypatch):
    import pipeline.services.outputs as outputs

    folder = exports.export_run(db, prepared, tmp_path, CLOSED)
    assert (folder / "report.html").is_file()
    monkeypatch.setattr(outputs, "write_report", lambda *a, **k: (_ for _ in ()).throw(ValueError("no chart")))
    exports.export_run(db, prepared, tmp_path, CLOSED)
    assert not (folder / "report.html").exists() and (folder / "allocations.csv").is_file()
