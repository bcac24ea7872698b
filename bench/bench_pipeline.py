"""The queue's overhead: a national-scale session through RabbitMQ + PostgreSQL + a `celery worker`
against the same steps called directly, in one run; and 1 000 000 decisions stored by COPY.

    python -m bench.bench_pipeline [--pharmacies 20500]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import create_engine, text

from pipeline.domain.vocabulary import RunStep
from pipeline.services import chain, runs as services
from pipeline.generator.generate import generate_scenario
from pipeline.entrypoints.runner import load_into
from pipeline.adapters.db import make_engine, migrate
from pipeline.adapters.db.frames import insert_frame
from pipeline.adapters.db.tables import Base

ROOT = Path(__file__).resolve().parents[1]
PG = os.environ.get("VIALFLOW_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
AMQP = os.environ.get("VIALFLOW_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672")
NOW = dt.datetime(2021, 6, 16, tzinfo=dt.timezone.utc)


def fresh_database() -> str:
    name = f"vialflow_bench_{uuid.uuid4().hex[:10]}"
    with create_engine(PG, isolation_level="AUTOCOMMIT").connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    return PG.rsplit("/", 1)[0] + f"/{name}"


def drop_database(url: str) -> None:
    with create_engine(PG, isolation_level="AUTOCOMMIT").connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)'))


def direct(scenario: Path) -> float:
    url = fresh_database()
    try:
        session_id = load_into(scenario, url, NOW)
        engine = make_engine(url)
        start = time.perf_counter()
        run = services.close_session(engine, session_id, NOW)
        services.allocate_run(engine, run, NOW)
        services.schedule_run(engine, run, NOW)
        return time.perf_counter() - start
    finally:
        drop_database(url)


def queued(scenario: Path, log: Path) -> float:
    url = fresh_database()
    vhost = f"vialflow-bench-{uuid.uuid4().hex[:8]}"
    subprocess.run(["rabbitmqctl", "add_vhost", vhost], check=True, capture_output=True)
    subprocess.run(["rabbitmqctl", "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"], check=True,
                   capture_output=True)
    broker = f"{AMQP}/{vhost}"
    env = {**os.environ, "VIALFLOW_DATABASE_URL": url, "VIALFLOW_BROKER_URL": broker}
    worker = subprocess.Popen([sys.executable, "-m", "celery", "-A", "workers", "worker", "--concurrency", "1",
                               "--loglevel", "INFO", "--without-gossip", "--without-mingle"],
                              cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    try:
        session_id = load_into(scenario, url, NOW)
        engine = make_engine(url)
        while "ready" not in log.read_text():
            time.sleep(0.1)
        from pipeline.entrypoints.celery_app import app

        app.conf.broker_url = broker
        start = time.perf_counter()
        with app.connection_for_write() as connection:
            app.send_task(chain.CLOSE.task, args=[session_id], connection=connection)
        while services.progress(engine, session_id)["done"] not in (RunStep.SCHEDULE, RunStep.PREPARE, RunStep.SEND):
            time.sleep(0.05)
        return time.perf_counter() - start
    finally:
        worker.terminate()
        worker.wait(60)
        drop_database(url)
        subprocess.run(["rabbitmqctl", "delete_vhost", vhost], capture_output=True)


def store_decisions(rows: int = 1_000_000) -> float:
    url = fresh_database()
    try:
        engine = make_engine(url)
        migrate(engine)
        rng = np.random.default_rng(1)
        frame = pd.DataFrame({"order_id": [f"A-{i:07d}" for i in range(rows)], "rank": np.arange(rows),
                              "requested": rng.integers(1, 20, rows), "capped": rng.integers(0, 10, rows)})
        frame["allocated"] = frame["capped"]
        frame["status"], frame["reason"] = "served", "ok"
        with engine.begin() as c:
            c.execute(text("INSERT INTO sessions (id, rules, input_hash, closes_at, confirmation_at, state, loaded_at)"
                           " VALUES ('bench', '{}', '', now(), now(), 'closed', now())"))
            c.execute(text("INSERT INTO runs (session_id, version, operator, reason, changes, input_hash, created_at)"
                           " VALUES ('bench', 1, 'bench', 'bench', '{}', '', now())"))
        start = time.perf_counter()
        with engine.begin() as c:
            insert_frame(c, Base.metadata.tables["decisions"], frame, run_id=1)
        return time.perf_counter() - start
    finally:
        drop_database(url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pharmacies", type=int, default=20_500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        scenario = Path(folder) / "scenario"
        counts = generate_scenario(scenario, seed=1, pharmacies=args.pharmacies)
        lines = counts["order_lines"]
        # The direct path twice around the queued one: the better of the two is the baseline, so
        # that neither warm-up nor a passing load on this shared machine favours the queue.
        first = direct(scenario)
        through_queue = queued(scenario, Path(folder) / "worker.log")
        baseline = min(first, direct(scenario))
    print(f"pipeline, {lines} lines: services called directly {baseline:.2f} s, "
          f"through RabbitMQ + a celery worker {through_queue:.2f} s: overhead {through_queue / baseline - 1:+.0%}"
          " (target under +20 %)")
    seconds = store_decisions()
    print(f"storing 1 000 000 decisions in PostgreSQL by COPY: {seconds:.2f} s ({1_000_000 / seconds:,.0f} rows/s;"
          " target under 5 s)")


if __name__ == "__main__":
    main()
