"""The Celery pipeline through a real RabbitMQ, a real PostgreSQL and real `celery worker` processes."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from pipeline.entrypoints.runner import load_into
from pipeline.adapters.db import make_engine
from pipeline.adapters.db.tables import Base

from tests.conftest import EXAMPLES

from .conftest import ROOT, wait_for

T = Base.metadata.tables
EXAMPLE = EXAMPLES / "notice-small"
pytestmark = pytest.mark.integration
UTC = dt.timezone.utc


def vialflow(*args: str, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline.entrypoints.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def copy_scenario(source: Path, target: Path, **session_lines: str) -> Path:
    """A copy of a scenario with some top-level session.toml keys rewritten."""
    shutil.copytree(source, target)
    toml = target / "session.toml"
    lines = toml.read_text(encoding="utf-8").splitlines()
    for key, value in session_lines.items():
        lines = [f'{key} = "{value}"' if line.startswith(f"{key} =") else line for line in lines]
    toml.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return target


def runs_of(engine, session_id: str) -> list:
    with engine.connect() as c:
        return c.execute(select(T["runs"]).where(T["runs"].c.session_id == session_id)).all()


def decisions_of(engine, run: int) -> int:
    with engine.connect() as c:
        return c.execute(select(func.count()).select_from(T["decisions"]).where(T["decisions"].c.run_id == run)).scalar()


def in_transaction(database_url: str) -> bool:
    """A worker's connection is inside a transaction on this database: a step is under way."""
    name = database_url.rsplit("/", 1)[1]
    with make_engine(database_url.rsplit("/", 1)[0] + "/test").connect() as c:
        return bool(c.execute(text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = :name AND pid <> pg_backend_pid()"
            " AND state IN ('active', 'idle in transaction') AND xact_start IS NOT NULL"
            " AND query NOT LIKE '%%pg_advisory%%'"), {"name": name}).scalar())


def scheduled(engine, session_id: str):
    found = runs_of(engine, session_id)
    return found[0] if len(found) == 1 and found[0].scheduled_at else None


def test_r1_full_session_close_through_rabbitmq_and_postgresql_matches_the_embedded_run(
        workers, database_url, broker_url, tmp_path):
    workers.start(concurrency=2)
    env = {**workers.env}
    served = vialflow("run", str(EXAMPLE), "--out", str(tmp_path / "deployed"), "--database-url", database_url,
                      "--broker-url", broker_url, env=env)
    assert served.returncode == 0, served.stderr + workers.logs()
    embedded = vialflow("run", str(EXAMPLE), "--out", str(tmp_path / "embedded"),
                        env={k: v for k, v in env.items() if not k.startswith("VIALFLOW_")})
    assert embedded.returncode == 0, embedded.stderr
    for name in ("allocations.csv", "deliveries.csv", "rejections.csv"):
        assert (tmp_path / "deployed" / name).read_bytes() == (tmp_path / "embedded" / name).read_bytes(), name
    expected = (EXAMPLE / "expected" / "allocations.csv").read_text().splitlines()
    assert sorted((tmp_path / "deployed" / "allocations.csv").read_text().splitlines()) == sorted(expected)


def test_r1_beat_tick_closes_a_session_whose_window_has_passed_and_leaves_a_future_one(
        workers, database_url, broker_url, tmp_path):
    past = copy_scenario(EXAMPLE, tmp_path / "past", id="past-session")
    future = copy_scenario(EXAMPLE, tmp_path / "future", id="future-session", closes_at="2021-06-22T23:00:00",
                           confirmation_at="2021-06-25T09:00:00")
    now = dt.datetime(2021, 6, 16, 8, 0, tzinfo=UTC)
    load_into(past, database_url, now)
    load_into(future, database_url, now)
    workers.start()
    from pipeline.entrypoints.celery_app import app

    app.conf.broker_url = broker_url
    with app.connection_for_write() as connection:
        app.send_task("schedules.tick", kwargs={"now": "2021-06-16T10:00:00+02:00"}, connection=connection)
    engine = make_engine(database_url)
    wait_for(lambda: scheduled(engine, "past-session"), what="the past session's run", timeout=120)
    time.sleep(1)
    assert runs_of(engine, "future-session") == []
    with engine.connect() as c:
        states = dict(c.execute(select(T["sessions"].c.id, T["sessions"].c.state)).all())
    assert states == {"past-session": "closed", "future-session": "open"}


def test_r1_the_same_close_triggered_twice_concurrently_gives_one_run(workers, database_url, broker_url):
    now = dt.datetime(2021, 6, 16, tzinfo=UTC)
    session_id = load_into(EXAMPLE, database_url, now)
    workers.start(concurrency=2)
    workers.start(concurrency=1)
    from pipeline.entrypoints.celery_app import app

    app.conf.broker_url = broker_url
    with app.connection_for_write() as connection:
        for _ in range(2):
            app.send_task("pipeline.close_session", args=[session_id], connection=connection)
        app.send_task("schedules.tick", kwargs={"now": now.isoformat()}, connection=connection)
    engine = make_engine(database_url)
    run = wait_for(lambda: scheduled(engine, session_id), what="one scheduled run")
    time.sleep(3)  # let any duplicate message be worked off
    assert len(runs_of(engine, session_id)) == 1
    assert decisions_of(engine, run.id) == 500
    with engine.connect() as c:
        deliveries = c.execute(select(func.sum(T["deliveries"].c.vials)).where(T["deliveries"].c.run_id == run.id)).scalar()
        allocated = c.execute(select(func.sum(T["decisions"].c.allocated)).where(T["decisions"].c.run_id == run.id)).scalar()
    assert deliveries == allocated


def test_a_worker_killed_in_the_middle_of_a_step_is_recovered_with_the_same_result(
        workers, database_url, broker_url, tmp_path):
    from pipeline.generator.generate import generate_scenario

    scenario = tmp_path / "large"
    generate_scenario(scenario, seed=7, pharmacies=3000, depots=40)
    now = dt.datetime(2021, 6, 16, tzinfo=UTC)
    session_id = load_into(scenario, database_url, now)
    engine = make_engine(database_url)
    first = workers.start()
    from pipeline.entrypoints.celery_app import app

    app.conf.broker_url = broker_url
    with app.connection_for_write() as connection:
        app.send_task("pipeline.close_session", args=[session_id], connection=connection)
    wait_for(lambda: runs_of(engine, session_id), what="the session to close", interval=0.01)
    wait_for(lambda: in_transaction(database_url), what="the allocation step's transaction", interval=0.01)
    workers.kill(first)
    run = runs_of(engine, session_id)[0]
    assert run.allocated_at is None, "the worker was killed too late to test a crash mid-step"
    assert decisions_of(engine, run.id) == 0  # nothing half-written
    workers.start()
    done = wait_for(lambda: scheduled(engine, session_id), what="the recovered run", timeout=300)
    # The recovered run's files, exported from the database as soon as it is scheduled: its emails
    # need not have settled for its data files (the deployed export step runs after prepare).
    recovered = vialflow("export", session_id, "--out", str(tmp_path / "exports"), "--database-url", database_url,
                         env=workers.env)
    assert recovered.returncode == 0, recovered.stderr
    after_crash = tmp_path / "exports" / session_id / "runs" / "1"
    undisturbed = vialflow("run", str(scenario), "--out", str(tmp_path / "undisturbed"),
                           env={k: v for k, v in workers.env.items() if not k.startswith("VIALFLOW_")})
    assert undisturbed.returncode == 0, undisturbed.stderr
    for name in ("allocations.csv", "deliveries.csv"):
        assert (after_crash / name).read_bytes() == (tmp_path / "undisturbed" / name).read_bytes(), name
    assert len(runs_of(engine, session_id)) == 1 and done.version == 1


def test_every_bulk_insert_leaves_the_planner_statistics_however_small(database_url):
    """A table PostgreSQL has never measured is planned as a handful of rows: the recipients query of
    a 500-line session then nested its loops for seconds. Each bulk insert analyses its table."""
    load_into(EXAMPLE, database_url, dt.datetime(2021, 6, 16, tzinfo=UTC))
    with make_engine(database_url).connect() as c:
        measured = dict(c.execute(text(
            "SELECT relname, reltuples FROM pg_class WHERE relname IN ('orders', 'professionals', 'pharmacies')")).all())
        counted = {name: c.execute(select(func.count()).select_from(T[name])).scalar() for name in measured}
    assert measured == {name: float(count) for name, count in counted.items()} and all(counted.values())
