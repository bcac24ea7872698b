"""The pipeline's steps as tasks: ids in, one service call, the next step enqueued after commit.

A step that finds its work already stored does nothing but pass the baton on, so a redelivered
message or a second worker is harmless. A step that finds its run held by another transaction
(a worker at work, or one just killed whose connection the database has not dropped yet) comes
back a little later rather than dropping the baton.
"""

from __future__ import annotations

from kombu.exceptions import OperationalError as BrokerError
from sqlalchemy.exc import OperationalError as DatabaseError

from pipeline import services

from .app import app
from .context import engine, now

TRANSIENT = (DatabaseError, BrokerError, ConnectionError)
STEP = dict(bind=True, autoretry_for=TRANSIENT, retry_backoff=2, retry_backoff_max=60, max_retries=8)
COME_BACK = dict(countdown=3, max_retries=600)  # up to half an hour behind a long step


class Step(app.Task):
    """On a failure for good, write the reason where the operator and `vialflow run` will see it."""

    def on_failure(self, exc, task_id, args, kwargs, einfo) -> None:
        services.record_failure(engine(), self.name, args[0] if args else None, f"{type(exc).__name__}: {exc}")


def _step(task, service, run: int, then=None) -> None:
    outcome = service(engine(), run, now())
    if outcome not in services.PASS_ON:
        raise task.retry(**COME_BACK)
    if then is not None:
        then.delay(run)


@app.task(name="pipeline.close_session", base=Step, **STEP)
def close_session(self, session_id: str) -> int:
    run = services.close_session(engine(), session_id, now())
    allocate.delay(run)
    return run


@app.task(name="pipeline.allocate", base=Step, **STEP)
def allocate(self, run: int) -> None:
    _step(self, services.allocate_run, run, then=schedule)


@app.task(name="pipeline.schedule", base=Step, **STEP)
def schedule(self, run: int) -> None:
    _step(self, services.schedule_run, run)
