"""Drawn sessions through the deployed form: loaded into PostgreSQL, closed and sent by `celery beat`,
worked by `celery -A workers worker` processes over RabbitMQ, exported; the export folder holds the
same data files as the embedded `vialflow run` of the same scenarios."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from sqlalchemy import select

from pipeline.adapters.db import make_engine
from pipeline.adapters.db.tables import Base
from tests.shapes.checks import check_run
from tests.shapes.run import vialflow
from tests.shapes.scenarios import Shape, shapes, write

from .conftest import ROOT, wait_for

pytestmark = pytest.mark.integration
T = Base.metadata.tables
CLI = [sys.executable, "-m", "pipeline.entrypoints.cli"]
DATA = ["allocations.csv", "deliveries.csv", "rejections.csv"]


def drawn(count: int) -> list[Shape]:
    """`count` sessions of the generator, the same ones at every run: of its first 40 draws, those with
    the most lines, of different numbers of vaccines where it can."""
    found: list[Shape] = []

    @settings(max_examples=40, derandomize=True, database=None, deadline=None, suppress_health_check=list(HealthCheck))
    @given(shapes(max_lines=60))
    def collect(shape):
        found.append(shape)

    collect()
    found.sort(key=lambda s: (not s.pharmacies, -len(s.lines), len(s.vaccines)))
    chosen, sizes = [], set()
    for shape in found:
        if len(shape.vaccines) not in sizes or len(chosen) + (len(found) - found.index(shape)) <= count:
            chosen.append(shape)
            sizes.add(len(shape.vaccines))
        if len(chosen) == count:
            break
    for number, shape in enumerate(chosen):
        shape.session_id = f"shape-{number}"
    return chosen


def test_drawn_sessions_through_beat_and_workers_export_the_files_of_the_embedded_run(
        workers, database_url, mail_sink, tmp_path):
    sessions = drawn(3)
    exports = tmp_path / "exports"
    for shape in sessions:
        scenario = write(shape, tmp_path / shape.session_id / "scenario")
        embedded = tmp_path / shape.session_id / "embedded"
        done = vialflow("run", str(scenario), "--out", str(embedded))
        assert done.code == 0, done.err
        check_run(shape, embedded, 1)
        loaded = subprocess.run([*CLI, "load", str(scenario), "--database-url", database_url], cwd=ROOT,
                                capture_output=True, text=True, timeout=120)
        assert loaded.returncode == 0, loaded.stderr
    workers.env.update(VIALFLOW_EXPORT_DIR=str(exports), VIALFLOW_BEAT_SECONDS="1")
    workers.start()
    beat = subprocess.Popen([sys.executable, "-m", "celery", "-A", "workers", "beat", "--schedule",
                             str(tmp_path / "beat-schedule"), "--loglevel", "WARNING"], cwd=ROOT, env=workers.env,
                            stdout=open(tmp_path / "beat.log", "w"), stderr=subprocess.STDOUT, start_new_session=True)
    try:
        engine = make_engine(database_url)

        def settled() -> bool:
            with engine.connect() as c:
                stamps = c.execute(select(T["runs"].c.settled_at, T["runs"].c.exported_at)).all()
            return len(stamps) == len(sessions) and all(s and e for s, e in stamps)

        wait_for(settled, timeout=240, what="beat and the workers to close, send and export every session")
        for shape in sessions:
            folder = exports / shape.session_id / "runs" / "1"
            wait_for(lambda: (folder / "summary.json").exists() and json.loads(
                (folder / "summary.json").read_text(encoding="utf-8"))["emails"]["waiting"] == 0,
                timeout=60, what=f"{shape.session_id}'s settled export")
            embedded = tmp_path / shape.session_id / "embedded"
            for name in DATA:
                assert (folder / name).read_bytes() == (embedded / name).read_bytes(), (shape.session_id, name)
            for path in sorted((embedded / "manifests").rglob("*.csv")):
                relative = path.relative_to(embedded)
                assert (folder / relative).read_bytes() == path.read_bytes(), (shape.session_id, relative)
            deployed, local = (json.loads((f / "summary.json").read_text(encoding="utf-8")) for f in (folder, embedded))
            assert deployed["vaccines"] == local["vaccines"] and deployed["deliveries"] == local["deliveries"]
            assert deployed["emails"] == local["emails"]
    finally:
        beat.send_signal(signal.SIGTERM)
        beat.wait(timeout=30)
