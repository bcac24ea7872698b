"""`vialflow run`: one scenario through the Celery pipeline, now, then its outputs written from the database.

Embedded default: SQLite in the run folder and an in-process worker over an in-memory transport.
With a broker URL the same tasks go to separate workers, which must share the database.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from pipeline import bootstrap
from pipeline.adapters.db import make_engine, migrate
from pipeline.adapters.files.changes import read_changes
from pipeline.adapters.files.scenario import load_scenario
from pipeline.services import ServiceError, confirmations, runs
from pipeline.services.outputs import write_mail_copies, write_outputs
from pipeline.services.reallocation import request_reallocation
from pipeline.settings import DATABASE_FILE, Settings

from .celery_app import app

# The tasks are sent by their stable names: this package never imports `workers`, which
# registers them in the worker that runs them.
CLOSE, ALLOCATE, FAN_OUT = "pipeline.close_session", "pipeline.allocate", "email.fan_out"

STEPS = {"closing": "closing the session", "allocating": "allocating", "allocated": "scheduling deliveries",
         "scheduled": "preparing the confirmations"}


def load_into(scenario: Path, database_url: str, now: dt.datetime) -> str:
    loaded = load_scenario(scenario)  # a broken scenario stops here, before anything is written
    engine = make_engine(database_url)
    migrate(engine)
    return runs.store_scenario(engine, loaded, now)


def run_scenario(scenario: Path, out: Path, settings: Settings, now: dt.datetime, timeout: float = 3600) -> dict:
    if not settings.in_process and not settings.database_url:
        raise ServiceError("--broker-url needs a --database-url that the workers share")
    loaded = load_scenario(scenario)
    out.mkdir(parents=True, exist_ok=True)
    settings = settings.in_folder(out)
    engine = make_engine(settings.database_url)
    migrate(engine)
    session_id = runs.store_scenario(engine, loaded, now)
    return _drive(engine, settings, out, session_id, (CLOSE, session_id), now, timeout)


def reallocate(session_id: str, changes_file: Path, operator: str, reason: str, out: Path, settings: Settings,
               now: dt.datetime, timeout: float = 3600) -> dict:
    """R11 on the folder of an earlier run (its database, unless --database-url names another)."""
    changes = read_changes(changes_file)
    if not settings.database_url and not (out / DATABASE_FILE).exists():
        raise ServiceError(f"{out} holds no run: give the folder of an earlier `vialflow run`, or --database-url")
    if not settings.in_process and not settings.database_url:
        raise ServiceError("--broker-url needs a --database-url that the workers share")
    settings = settings.in_folder(out)
    engine = make_engine(settings.database_url)
    migrate(engine)
    run, _ = request_reallocation(engine, session_id, changes, operator, reason, now)
    return _drive(engine, settings, out, session_id, (ALLOCATE, run), now, timeout)


def _drive(engine, settings: Settings, out: Path, session_id: str, first: tuple[str, object], now: dt.datetime,
           timeout: float) -> dict:
    """Send the `first` task (name, argument), wait for the run and its emails, then write its outputs."""
    with _progress() as progress, contextlib.ExitStack() as stack:
        step = progress.add_task("starting the workers", total=None)
        show = lambda text: progress.update(step, description=text)  # noqa: E731
        if settings.in_process:
            smtp_url = settings.smtp_url or stack.enter_context(_loopback_sink(out / "mail"))
            stack.enter_context(_in_process_worker(replace(settings, smtp_url=smtp_url)))
        else:
            app.conf.broker_url = settings.broker_url
        fan_out = lambda run: app.send_task(FAN_OUT, args=[run])  # noqa: E731
        app.send_task(first[0], args=[first[1]])
        run = _wait(engine, session_id, show, timeout)
        if confirmations.start_sending(engine, run, now):
            fan_out(run)
        _wait_for_mail(engine, run, show, fan_out, timeout)
        show("writing outputs")
        if settings.smtp_url:
            write_mail_copies(engine, run, out / "mail", settings.mail_from, sign=bootstrap.signer(settings))
        summary = write_outputs(engine, run, out / "runs" / str(runs.version_of(engine, run)))
    for item in (out / "runs" / str(summary["run"])).iterdir():
        target = out / item.name
        if item.is_dir():
            shutil.copytree(item, target, dirs_exist_ok=True)
        else:
            shutil.copyfile(item, target)
    return summary


@contextlib.contextmanager
def _loopback_sink(folder: Path):
    """The embedded SMTP server, in a child process writing `folder`; yields its URL."""
    child = subprocess.Popen([sys.executable, "-m", "pipeline.adapters.mail.sink", str(folder)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        port = child.stdout.readline().strip()
        if not port.isdigit():
            raise ServiceError("the embedded SMTP server did not start")
        yield f"smtp://127.0.0.1:{port}"
    finally:
        child.stdin.close()
        child.wait(timeout=30)


@contextlib.contextmanager
def _in_process_worker(settings: Settings):
    """A Celery worker in a thread of this process, over an in-memory transport, wired to `settings`."""
    from celery.contrib.testing.worker import start_worker

    app.conf.broker_url = "memory://localhost/"
    app.conf.broker_transport_options = {**app.conf.broker_transport_options, "polling_interval": 0.05}
    bootstrap.wire(settings).announce()
    # Celery sets the root logger's level to the worker's: keep this command's (bootstrap.configure_logging).
    with start_worker(app, pool="solo", concurrency=1, perform_ping_check=False,
                      loglevel=logging.getLogger().getEffectiveLevel(),
                      shutdown_timeout=30) as worker:
        yield
        worker.stop()  # sooner than waiting out the idle loop's poll


def _wait(engine, session_id: str, show, timeout: float) -> int:
    """Until the session's latest run has its emails prepared; the run id."""
    def prepared():
        state = runs.progress(engine, session_id)
        if state["error"]:
            raise ServiceError(f"the pipeline failed: {state['error']}")
        show(STEPS.get(state["step"], "done"))
        return state["run"] if state["step"] == "prepared" else None

    return _poll(prepared, timeout, 0.1, "the pipeline did not finish", "workers")


def _wait_for_mail(engine, run: int, show, fan_out, timeout: float) -> None:
    """Until every email is sent, failed or unknown; emails due for another try are handed over
    again (in the deployed form, beat does that)."""
    def settled():
        counts = confirmations.outbox_counts(engine, run)
        waiting = sum(n for state, n in counts.items() if state not in confirmations.TERMINAL)
        show(f"sending emails: {counts.get('sent', 0)} sent, {waiting} to go")
        if counts.get("retry") and confirmations.due(engine, run, dt.datetime.now(dt.timezone.utc)):
            fan_out(run)
        return not waiting

    _poll(settled, timeout, 0.2, "the emails were not all sent", "email workers")


def _poll(done, timeout: float, interval: float, late: str, who: str):
    deadline = time.monotonic() + timeout
    while not (result := done()):
        if time.monotonic() > deadline:
            raise ServiceError(f"{late} within {timeout:.0f} s; are the {who} running?")
        time.sleep(interval)
    return result


def _progress() -> Progress:
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), transient=True)
