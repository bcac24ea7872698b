"""The command line as people slip on it: each slip one line on stderr with its usage (exit 2), never a
traceback; a view that fails costs no data file; anything unexpected is one line naming its log."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pipeline.adapters.db import make_engine
from pipeline.entrypoints.metrics import Collector
from pipeline.settings import DATABASE_FILE
from tests.conftest import FIXTURE, vialflow
from tests.shapes.run import vialflow as vialflow_here

DATA = ["allocations.csv", "deliveries.csv", "rejections.csv", "summary.json"]


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in text, text
    return lines[0]


@pytest.mark.parametrize("args", [
    ["runn"], ["run"], ["run", "fixtures/2021-06-14"], ["run", "x", "--bogus"], ["explain", "A-1", "--run", "x"],
    ["explain"], ["explain", "A-1", "--run", "0"], ["lookup"], ["emails", "2021-06-14", "--state", "sentt"],
    ["lookup", "75001234A"], ["lookup", "750012347", "--out", "/nonexistent"], ["users"], ["users", "add"],
    ["fixtures", "generate"], ["runs", "s", "--json", "extra"],
], ids=" ".join)
def test_each_slip_on_the_command_line_is_one_line_with_its_usage_and_exit_2(args):
    done = vialflow_here(*args)
    assert done.code == 2, (done.code, done.err)
    assert one_line(done.err).startswith("vialflow: ")


def test_a_slip_through_the_installed_command_is_one_line_too():
    done = vialflow("run", "--bogus")
    assert done.returncode == 2 and "No such option: --bogus" in one_line(done.stderr)


def test_a_misspelt_command_or_choice_is_answered_with_what_exists():
    assert "Did you mean 'run', 'runs'?" in vialflow_here("runn").err
    said = vialflow_here("emails", "2021-06-14", "--state", "sentt").err
    assert "'sentt' is not a state of an email" in said and "pending" in said and "unknown" in said
    assert "not a FINESS number" in vialflow_here("lookup", "75001234A").err
    assert "/nonexistent holds no run" in vialflow_here("lookup", "750012347", "--out", "/nonexistent").err


def test_a_bare_vialflow_prints_its_help_and_one_line_on_stderr():
    done = vialflow_here()
    assert done.code == 2 and "Commands" in done.out and "run" in done.out
    assert "a command is needed" in one_line(done.err)


def test_version_prints_the_version_and_exits_0():
    from importlib.metadata import version

    done = vialflow("--version")
    assert done.returncode == 0 and done.stdout.strip() == f"vialflow {version('vialflow')}" and not done.stderr


@pytest.fixture
def error_log(tmp_path) -> Path:
    return tmp_path / "errors.log"


def test_an_unexpected_error_is_one_line_naming_the_log_where_its_traceback_went(tmp_path, monkeypatch, error_log):
    import pipeline.entrypoints.runner as runner

    def broken(*_args, **_kwargs):
        raise RuntimeError("something nobody foresaw, for pro.10000000001@sante.example.fr")

    monkeypatch.setattr(runner, "run_scenario", broken)
    done = vialflow_here("run", str(FIXTURE), "--out", str(tmp_path / "out"), env={"VIALFLOW_ERROR_LOG": str(error_log)})
    assert done.code == 1
    line = one_line(done.err)
    assert "unexpected error (RuntimeError)" in line and str(error_log) in line and "--debug" in line
    logged = error_log.read_text(encoding="utf-8")
    assert "Traceback" in logged and "something nobody foresaw" in logged
    assert "@sante.example.fr" not in logged and "sante.example.fr" not in line


def test_with_debug_an_unexpected_error_shows_its_traceback(tmp_path, monkeypatch):
    import pipeline.entrypoints.runner as runner

    monkeypatch.setattr(runner, "run_scenario", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("boom")))
    with pytest.raises(RuntimeError, match="boom"):
        from pipeline.entrypoints.cli import main

        monkeypatch.setattr("sys.argv", ["vialflow", "--debug", "run", str(FIXTURE), "--out", str(tmp_path / "o")])
        main()


def test_a_report_that_cannot_be_drawn_costs_no_data_file_and_is_said_in_one_line(tmp_path, monkeypatch, error_log):
    """The report failing (here its drawing raises) leaves every contract file and dispatch file
    written, the failure recorded on the run for `vialflow runs`, the console and metrics; exit 5."""
    import pipeline.services.outputs as outputs

    def broken(*_args, **_kwargs):
        raise ValueError("NaTType does not support strftime")

    monkeypatch.setattr(outputs, "write_report", broken)
    out = tmp_path / "out"
    done = vialflow_here("run", str(FIXTURE), "--out", str(out), env={"VIALFLOW_ERROR_LOG": str(error_log)})
    assert done.code == 5, done.err
    line = one_line(done.err)
    assert "every data file is written, but report.html: ValueError" in line and str(error_log) in line
    for name in DATA:
        assert (out / name).is_file() and (out / "runs" / "1" / name).is_file(), name
    index = json.loads((out / "manifests" / "index.json").read_text(encoding="utf-8"))
    assert index["files"] and all((out / "manifests" / f["path"]).is_file() for f in index["files"])
    assert not (out / "report.html").exists()
    assert "Traceback" in error_log.read_text(encoding="utf-8")
    runs = vialflow("runs", "2021-06-14", "--out", str(out), "--json")
    assert json.loads(runs.stdout)[0]["view_failure"].startswith("report.html: ValueError")
    engine = make_engine(f"sqlite:///{out / DATABASE_FILE}")
    failed = {tuple(sample.labels.values()) for family in Collector(engine).collect() for sample in family.samples
              if family.name == "vialflow_run_failed"}
    engine.dispose()
    assert failed == {("2021-06-14", "1", "view")}


def test_the_report_is_written_whatever_mplbackend_says(tmp_path):
    """The charts go straight to SVG: a display backend set for another program (or misspelt, which
    makes matplotlib's import fail) changes nothing."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("VIALFLOW_")} | {"MPLBACKEND": "nonexistent"}
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "pipeline.entrypoints.cli", "run", str(FIXTURE), "--out", str(out)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert re.search(r"<svg\b", (out / "report.html").read_text(encoding="utf-8"))
