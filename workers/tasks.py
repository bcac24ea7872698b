"""The pipeline's steps as tasks: ids in, one service call, the next step enqueued after commit.

A step that finds its work already stored does nothing but pass the baton on, so a redelivered
message or a second worker is harmless.
"""

from __future__ import annotations

from kombu.exceptions import OperationalError as BrokerError
from sqlalchemy.exc import OperationalError as DatabaseError

from pipeline import services

from .app import app
from .context import engine, now

TRANSIENT = (DatabaseError, BrokerError, ConnectionError)
STEP = dict(bind=True, autoretry_for=TRANSIENT, retry_backoff=2, retry_backoff_max=60, max_retries=8)


class Step(app.Task):
    """On a failure for good, write the reason where the operator and `vialflow run` will see it."""

    def on_failure(self, exc, task_id, args, kwargs, einfo) -> None:
        services.record_failure(engine(), self.name, args[0] if args else None, f"{type(exc).__name__}: {exc}")


@app.task(name="pipeline.close_session", base=Step, **STEP)
def close_session(self, session_id: str) -> int:
    run = services.close_session(engine(), session_id, now())
    allocate.delay(run)
    return run


@app.task(name="pipeline.allocate", base=Step, **STEP)
def allocate(self, run: int) -> None:
    if services.allocate_run(engine(), run, now()) in services.PASS_ON:
        schedule.delay(run)


@app.task(name="pipeline.schedule", base=Step, **STEP)
def schedule(self, run: int) -> None:
    services.schedule_run(engine(), run, now())
