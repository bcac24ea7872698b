"""`vialflow run`: one scenario through the Celery pipeline, now, then its outputs written from the database.

Embedded default: SQLite in the run folder and an in-process worker over an in-memory transport.
With a broker URL the same tasks go to separate workers, which must share the database.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from pathlib import Path

from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from . import services
from .outputs import write_outputs
from .scenario import load_scenario
from .services import ServiceError
from .settings import Settings
from .store import make_engine, migrate

STEPS = {"closing": "closing the session", "allocating": "allocating", "allocated": "scheduling deliveries",
         "scheduled": "done"}


def load_into(scenario: Path, database_url: str, now: dt.datetime) -> str:
    loaded = load_scenario(scenario)  # a broken scenario stops here, before anything is written
    engine = make_engine(database_url)
    migrate(engine)
    return services.store_scenario(engine, loaded, now)


def run_scenario(scenario: Path, out: Path, settings: Settings, now: dt.datetime, timeout: float = 3600) -> dict:
    if settings.broker_url and not settings.database_url:
        raise ServiceError("--broker-url needs a --database-url that the workers share")
    loaded = load_scenario(scenario)
    out.mkdir(parents=True, exist_ok=True)
    database_url = settings.database_for(out)
    engine = make_engine(database_url)
    migrate(engine)
    with _progress() as progress:
        step = progress.add_task(f"storing {len(loaded.orders)} order lines", total=None)
        session_id = services.store_scenario(engine, loaded, now)
        with _workers(settings, database_url):
            from workers.tasks import close_session

            close_session.delay(session_id)
            run = _wait(engine, session_id, lambda text: progress.update(step, description=text), timeout)
        progress.update(step, description="writing outputs")
        return write_outputs(engine, run, out)


@contextlib.contextmanager
def _workers(settings: Settings, database_url: str):
    from workers.app import app
    from workers.context import use_database

    if settings.broker_url:
        app.conf.broker_url = settings.broker_url
        yield
        return
    from celery.contrib.testing.worker import start_worker

    app.conf.broker_url = "memory://localhost/"
    app.conf.broker_transport_options = {**app.conf.broker_transport_options, "polling_interval": 0.05}
    use_database(database_url)
    with start_worker(app, pool="solo", concurrency=1, perform_ping_check=False, loglevel="WARNING",
                      shutdown_timeout=30) as worker:
        yield
        worker.stop()  # sooner than waiting out the idle loop's poll


def _wait(engine, session_id: str, show, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while True:
        state = services.progress(engine, session_id)
        if state["error"]:
            raise ServiceError(f"the pipeline failed: {state['error']}")
        if state["step"] == "scheduled":
            return state["run"]
        show(STEPS[state["step"]])
        if time.monotonic() > deadline:
            raise ServiceError(f"the pipeline did not finish within {timeout:.0f} s; are the workers running?")
        time.sleep(0.1)


def _progress() -> Progress:
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), transient=True)
