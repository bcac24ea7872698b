"""The pipeline's steps as tasks, as pipeline/services/chain.py declares them: ids in, one service call,
the next step of the chain enqueued after the commit.

A step that finds its work already stored does nothing but pass the baton on, so a redelivered
message or a second worker is harmless. A step that finds its run held by another transaction
(a worker at work, or one just killed whose connection the database has not dropped yet) comes
back a little later rather than dropping the baton.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from celery import group
from kombu.exceptions import OperationalError as BrokerError
from sqlalchemy.exc import OperationalError as DatabaseError

from pipeline import bootstrap
from pipeline.entrypoints.celery_app import app, send
from pipeline.services import chain, confirmations, exports, runs

TRANSIENT = (DatabaseError, BrokerError, ConnectionError)
RETRIED = dict(bind=True, autoretry_for=TRANSIENT, retry_backoff=2, max_retries=8)
COME_BACK = dict(countdown=3, max_retries=600)  # up to half an hour behind a long step
CHUNK = 500  # recipients per email task
# Emails waiting in the queue per run at most: the rest stay in the outbox, unleased, until sent chunks
# make room (each one asks for more). A lease must outlast the queue's wait: with the window bounded,
# the slowest fleet (one process signing with RSA, about 130 emails/s) empties it in under 80 s, far
# inside the 300 s lease, whatever the session's size. Handing out everything at once, a million-line
# session's last rows outwaited their lease and were handed out twice (claimed once, but sent as
# empty chunks).
WINDOW = 20 * CHUNK


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class StepTask(app.Task):
    """A step of the run's chain (its `step`, given where the task is declared). On a failure for good,
    which step failed and why are written where the operator and `vialflow run` will see them."""

    step: chain.Step

    def on_failure(self, exc, task_id, args, kwargs, einfo) -> None:
        runs.record_failure(bootstrap.current().engine, self.step.code, args[0] if args else None,
                            f"{type(exc).__name__}: {exc}")


STEP = dict(base=StepTask, **RETRIED, retry_backoff_max=60)


def _carry(task: StepTask, service, run: int) -> None:
    """The step's service on the run, then the next step of the chain, once this one's work is stored."""
    outcome = service(bootstrap.current().engine, run, now())
    if outcome not in runs.PASS_ON:
        raise task.retry(**COME_BACK)
    following = chain.after(task.step)
    if following is not None:
        send(following.task, run)


@app.task(name=chain.CLOSE.task, step=chain.CLOSE, **STEP)
def close_session(self, session_id: str) -> int:
    run = runs.close_session(bootstrap.current().engine, session_id, now())
    send(chain.after(chain.CLOSE).task, run)
    return run


@app.task(name=chain.ALLOCATE.task, step=chain.ALLOCATE, **STEP)
def allocate(self, run: int) -> None:
    _carry(self, runs.allocate_run, run)


@app.task(name=chain.SCHEDULE.task, step=chain.SCHEDULE, **STEP)
def schedule(self, run: int) -> None:
    _carry(self, runs.schedule_run, run)


@app.task(name=chain.PREPARE.task, step=chain.PREPARE, **STEP)
def prepare_confirmations(self, run: int) -> None:
    _carry(self, confirmations.prepare_confirmations, run)


@app.task(name=chain.EXPORT.task, **{**RETRIED, "autoretry_for": TRANSIENT + (OSError,)})
def export(self, run: int) -> str | None:
    """The run's files in the export folder, when this worker has one (again once its emails settled)."""
    wiring = bootstrap.current()
    if not wiring.settings.export_dir:
        return None
    return str(exports.export_run(wiring.engine, run, Path(wiring.settings.export_dir), now()))


@app.task(name=chain.SEND.task, **RETRIED)
def fan_out(self, run: int) -> int:
    """Hand the run's due emails nobody holds to the email workers, in chunks, up to the window."""
    wiring = bootstrap.current()
    ids = confirmations.hand_out(wiring.engine, run, now(), wiring.settings.lease_seconds, WINDOW)
    if ids:
        group(send_chunk.s(ids[i:i + CHUNK]) for i in range(0, len(ids), CHUNK)).apply_async()
    return len(ids)


@app.task(name=chain.SEND_CHUNK, **RETRIED)
def send_chunk(self, ids: list[int]) -> dict:
    wiring = bootstrap.current()
    counts = confirmations.send_chunk(wiring.engine, ids, self.request.id, now(), wiring.smtp_target(),
                                      wiring.settings.mail_from, delays=wiring.settings.retry_delays,
                                      lease=wiring.settings.lease_seconds)
    for run in confirmations.runs_of(wiring.engine, ids):
        if confirmations.settle(wiring.engine, run, now()):
            export.delay(run)  # summary.json and the report again, with the emails' outcomes
        else:
            fan_out.delay(run)  # this chunk made room in the window: the next emails, if any are left
    return counts
