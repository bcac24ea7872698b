"""`vialflow run`: one scenario through the Celery pipeline, now, then its outputs written from the database.

Embedded default: SQLite in the run folder and an in-process worker over an in-memory transport.
With a broker URL the same tasks go to separate workers, which must share the database.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import socket
import time
import uuid
from pathlib import Path

from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from pipeline import bootstrap
from pipeline.adapters.db import make_engine, migrate
from pipeline.adapters.files.changes import read_changes
from pipeline.adapters.files.scenario import load_scenario
from pipeline.services import ServiceError, chain, confirmations, runs
from pipeline.services.outputs import Written, publish, write_mail_copies, write_outputs
from pipeline.services.reallocation import request_reallocation
from pipeline.settings import DATABASE_FILE, Settings

from . import embedded
from .celery_app import EMAIL_QUEUE, PIPELINE_QUEUE, app, send, use_broker


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
    return _drive(engine, settings, out, session_id, (chain.CLOSE, session_id), now, timeout)


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
    return _drive(engine, settings, out, session_id, (chain.ALLOCATE, run), now, timeout)


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
    with _progress() as progress, embedded.workers(settings, out / "mail"):
        step = progress.add_task("renvoi des emails", total=None)
        show = lambda text: progress.update(step, description=text)  # noqa: E731
        for each in confirmations.runs_of(engine, reopened):
            send(chain.SEND.task, each)
            embedded.wait_until_settled(engine, each, show, timeout)
    listed = confirmations.outbox_listing(engine, session_id)
    for value in listed[listed["id"].isin(reopened)]["state"]:
        counts[value] = counts.get(value, 0) + 1
    return counts


def _drive(engine, settings: Settings, out: Path, session_id: str, first: tuple[chain.Step, object],
           now: dt.datetime, timeout: float) -> Written:
    """Send the `first` step (the step, its argument), wait for the run and its emails, then write its outputs.

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


def _steps(engine, settings: Settings, out: Path, session_id: str, first: tuple[chain.Step, object],
           now: dt.datetime, timeout: float, renew) -> Written:
    with _progress() as progress, embedded.workers(settings, out / "mail"):
        step = progress.add_task("démarrage", total=None)
        show = lambda text: (renew(), progress.update(step, description=text))  # noqa: E731
        send(first[0].task, first[1])
        run = embedded.wait_until_prepared(engine, session_id, show, timeout)
        # Now, whatever the session's confirmation_at: the command was asked to run the whole pipeline.
        confirmations.start_sending(engine, run, now)
        send(chain.SEND.task, run)  # hands out only what nobody holds: on a rerun, what the stopped command left
        embedded.wait_until_settled(engine, run, show, timeout)
        show("écriture des fichiers")
        if settings.smtp_url:
            write_mail_copies(engine, run, out / "mail", settings.mail_from, sign=bootstrap.signer(settings))
        written = write_outputs(engine, run, out / "runs" / str(runs.version_of(engine, run)))
    publish(out / "runs" / str(written.summary["run"]), out)
    return written


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
    use_broker(settings.broker_url)
    where = _where(settings.broker_url)
    try:
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=timeout)
    except Exception as error:  # noqa: BLE001 - any failure to connect is the same advice
        raise ServiceError(f"cannot reach the broker at {where} ({why(error)}): is RabbitMQ running, "
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


def why(error: Exception) -> str:
    """The first line of what a database or broker error says, short enough for a one-line message."""
    text = str(getattr(error, "orig", None) or error).strip().splitlines()
    return (text[0] if text else type(error).__name__)[:160]


def _progress() -> Progress:
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), transient=True)
