"""`vialflow run`: one scenario through the Celery pipeline, now, then its outputs written from the database.

Embedded default: SQLite in the run folder and an in-process worker over an in-memory transport.
With a broker URL the same tasks go to separate workers, which must share the database.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import replace
from pathlib import Path

from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from pipeline import bootstrap
from pipeline.adapters.db import make_engine, migrate
from pipeline.adapters.files.changes import read_changes
from pipeline.adapters.files.scenario import load_scenario
from pipeline.services import ServiceError, confirmations, runs
from pipeline.services.outputs import Written, publish, write_mail_copies, write_outputs
from pipeline.services.reallocation import request_reallocation
from pipeline.settings import DATABASE_FILE, Settings

from .celery_app import EMAIL_QUEUE, PIPELINE_QUEUE, app

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


def run_scenario(scenario: Path, out: Path, settings: Settings, now: dt.datetime, timeout: float = 3600) -> Written:
    if not settings.in_process and not settings.database_url:
        raise ServiceError("--broker-url needs a --database-url that the workers share")
    loaded = load_scenario(scenario)
    if not settings.in_process:
        workers_ready(settings)  # before anything is written
    if settings.database_url:  # a database that cannot be reached stops the run before the folder is made
        engine = make_engine(settings.database_url)
        migrate(engine)
    out.mkdir(parents=True, exist_ok=True)
    if not settings.database_url:
        settings = settings.in_folder(out)
        engine = make_engine(settings.database_url)
        migrate(engine)
    session_id = runs.store_scenario(engine, loaded, now)
    return _drive(engine, settings, out, session_id, (CLOSE, session_id), now, timeout)


def reallocate(session_id: str, changes_file: Path, operator: str, reason: str, out: Path, settings: Settings,
               now: dt.datetime, timeout: float = 3600) -> Written:
    """R11 on the folder of an earlier run (its database, unless --database-url names another)."""
    changes = read_changes(changes_file)
    if not settings.database_url and not (out / DATABASE_FILE).exists():
        raise ServiceError(f"{out} holds no run: give the folder of an earlier `vialflow run`, or --database-url")
    if not settings.in_process and not settings.database_url:
        raise ServiceError("--broker-url needs a --database-url that the workers share")
    if not settings.in_process:
        workers_ready(settings)
    settings = settings.in_folder(out)
    engine = make_engine(settings.database_url)
    migrate(engine)
    run, _ = request_reallocation(engine, session_id, changes, operator, reason, now)
    return _drive(engine, settings, out, session_id, (ALLOCATE, run), now, timeout)


def resend_emails(engine, settings: Settings, out: Path, session_id: str, run: int | None, state: str | None,
                  operator: str, reason: str, now: dt.datetime, timeout: float) -> dict:
    """Put the unknown or failed emails back (recorded with who and why), send them, wait until they settle."""
    if not settings.in_process:
        workers_ready(settings)
    reopened = confirmations.resend(engine, session_id, run, state, operator, reason, now)
    if not reopened:
        return {}
    settings = settings.in_folder(out)
    counts: dict = {}
    with contextlib.ExitStack() as stack, _progress() as progress:
        step = progress.add_task("sending again", total=None)
        show = lambda text: progress.update(step, description=text)  # noqa: E731
        _workers(stack, settings, out)
        fan_out = lambda r: app.send_task(FAN_OUT, args=[r])  # noqa: E731
        for each in confirmations.runs_of(engine, reopened):
            fan_out(each)
            _wait_for_mail(engine, each, show, fan_out, timeout)
    listed = confirmations.outbox_listing(engine, session_id)
    for value in listed[listed["id"].isin(reopened)]["state"]:
        counts[value] = counts.get(value, 0) + 1
    return counts


def _drive(engine, settings: Settings, out: Path, session_id: str, first: tuple[str, object], now: dt.datetime,
           timeout: float) -> Written:
    """Send the `first` task (name, argument), wait for the run and its emails, then write its outputs.

    The command holds the session while it works: a second command on the same session is refused.
    Embedded, the worker lives and dies with this command, so whatever an earlier, stopped command
    left claimed is taken back at once (what was going out is recorded unknown): a rerun resumes."""
    holder = f"pid {os.getpid()} on {socket.gethostname()}#{uuid.uuid4().hex[:8]}"
    runs.hold(engine, session_id, holder, now, HOLD_SECONDS, _gone)
    if settings.in_process:
        confirmations.recover(engine, now, session_id, everything=True)
    renew = lambda: runs.hold(engine, session_id, holder, _utcnow(), HOLD_SECONDS, _gone)  # noqa: E731
    try:
        return _steps(engine, settings, out, session_id, first, now, timeout, renew)
    finally:
        with contextlib.suppress(Exception):  # a lost database keeps its hold until it runs out
            runs.release(engine, session_id, holder)


def _steps(engine, settings: Settings, out: Path, session_id: str, first: tuple[str, object], now: dt.datetime,
           timeout: float, renew) -> Written:
    with _progress() as progress, contextlib.ExitStack() as stack:
        step = progress.add_task("starting the workers", total=None)
        show = lambda text: (renew(), progress.update(step, description=text))  # noqa: E731
        _workers(stack, settings, out)
        fan_out = lambda run: app.send_task(FAN_OUT, args=[run])  # noqa: E731
        app.send_task(first[0], args=[first[1]])
        run = _wait(engine, session_id, show, timeout)
        confirmations.start_sending(engine, run, now)
        fan_out(run)  # hands out only what nobody holds: on a rerun, what the stopped command left
        _wait_for_mail(engine, run, show, fan_out, timeout)
        show("writing outputs")
        if settings.smtp_url:
            write_mail_copies(engine, run, out / "mail", settings.mail_from, sign=bootstrap.signer(settings))
        written = write_outputs(engine, run, out / "runs" / str(runs.version_of(engine, run)))
    publish(out / "runs" / str(written.summary["run"]), out)
    return written


def _workers(stack: contextlib.ExitStack, settings: Settings, out: Path) -> None:
    """Embedded: an in-process worker (and the loopback SMTP server writing DIR/mail/ when no other is
    named), for as long as `stack`; else the tasks go to the broker's workers."""
    if settings.in_process:
        smtp_url = settings.smtp_url or stack.enter_context(_loopback_sink(out / "mail"))
        # Whether emails are signed matters for a real SMTP server, not for the loopback one.
        stack.enter_context(_in_process_worker(replace(settings, smtp_url=smtp_url), announce=bool(settings.smtp_url)))
    else:
        app.conf.broker_url = settings.broker_url


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
def _in_process_worker(settings: Settings, announce: bool = True):
    """A Celery worker in a thread of this process, over an in-memory transport, wired to `settings`."""
    from celery.contrib.testing.worker import start_worker

    app.conf.broker_url = "memory://localhost/"
    app.conf.broker_transport_options = {**app.conf.broker_transport_options, "polling_interval": 0.05}
    wiring = bootstrap.wire(settings)
    if announce:
        wiring.announce()
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
    """Until every email is sent, failed or unknown; emails due for another try, or whose lease ran
    out, are handed over again (in the deployed form, beat does that too)."""
    last = [time.monotonic()]

    def settled():
        counts = confirmations.outbox_counts(engine, run)
        waiting = sum(n for state, n in counts.items() if state not in confirmations.TERMINAL)
        show(f"sending emails: {counts.get('sent', 0)} sent, {waiting} to go")
        if waiting and time.monotonic() - last[0] > 2:
            last[0] = time.monotonic()
            if run in confirmations.recover(engine, _utcnow())["runs"]:
                fan_out(run)
        if not waiting:
            confirmations.settle(engine, run, _utcnow())
        return not waiting

    _poll(settled, timeout, 0.2, "the emails were not all sent", "email workers")


HOLD_SECONDS = 30  # renewed at every poll; a command killed without a word loses it after that


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _gone(holder: str) -> bool:
    """The holding command ran on this machine and its process is no more."""
    pid, _, rest = holder.removeprefix("pid ").partition(" on ")
    if rest.split("#")[0] != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


WORKERS_WAIT = 10  # seconds the command waits for the workers to answer before it says none does


def workers_ready(settings: Settings, timeout: float = 1.0) -> None:
    """Ask the workers on the broker which queues they consume; say in one line what is missing."""
    app.conf.broker_url = settings.broker_url
    where = _where(settings.broker_url)
    try:
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=timeout)
    except Exception as error:  # noqa: BLE001 - any failure to connect is the same advice
        raise ServiceError(f"cannot reach the broker at {where} ({_why(error)}): is RabbitMQ running, "
                           "and is --broker-url (VIALFLOW_BROKER_URL) right?") from None
    deadline = time.monotonic() + WORKERS_WAIT  # workers started a moment ago may still be starting
    while True:
        answers = app.control.inspect(timeout=timeout).active_queues() or {}
        consumed = {queue["name"] for queues in answers.values() for queue in queues or ()}
        missing = [queue for queue in (PIPELINE_QUEUE, EMAIL_QUEUE) if queue not in consumed]
        if not missing or time.monotonic() > deadline:
            break
    if not answers:
        raise ServiceError(f"no worker answers on the broker at {where}: start `celery -A workers worker` with the "
                           "same VIALFLOW_BROKER_URL and VIALFLOW_DATABASE_URL, then run this command again")
    if missing:
        raise ServiceError(f"no worker consumes {' or '.join(missing)} on {where}: start `celery -A workers worker "
                           f"-Q {','.join(missing)}`, then run this command again")


def _where(url: str) -> str:
    """A broker URL with its password masked (kombu's own sanitiser)."""
    from kombu.utils.url import maybe_sanitize_url

    return maybe_sanitize_url(url)


def _why(error: Exception) -> str:
    text = str(getattr(error, "orig", None) or error).strip().splitlines()
    return (text[0] if text else type(error).__name__)[:160]


def _poll(done, timeout: float, interval: float, late: str, who: str):
    deadline = time.monotonic() + timeout
    while not (result := done()):
        if time.monotonic() > deadline:
            raise ServiceError(f"{late} within {timeout:.0f} s; are the {who} running?")
        time.sleep(interval)
    return result


def _progress() -> Progress:
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), transient=True)
