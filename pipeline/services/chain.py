"""The pipeline's step chain, declared once: each step, the stable name of the task that carries it, the
run's stamp it sets, and the step after it.

close ► allocate ► schedule ► prepare ► export, each passing its run to the next once its work is stored;
then the emails, on their own queue: fan-out hands a run's due emails out in chunks, each chunk a task that
asks for the next. Beat's tick starts the chain (a session due to close, a run due to send) and carries on
whatever was stranded. The Celery tasks (workers/tasks.py), beat (schedules), the embedded mode and the
console all run this declaration; no other module spells a task's name.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.domain.vocabulary import RunStep


@dataclass(frozen=True)
class Step:
    code: RunStep
    task: str  # the Celery task's name: stable, what a message carries from one process to another
    stamp: str | None  # the run's column stamped when the step's work is stored (None: the run itself)


CLOSE = Step(RunStep.CLOSE, "pipeline.close_session", None)
ALLOCATE = Step(RunStep.ALLOCATE, "pipeline.allocate", "allocated_at")
SCHEDULE = Step(RunStep.SCHEDULE, "pipeline.schedule", "scheduled_at")
PREPARE = Step(RunStep.PREPARE, "pipeline.prepare_confirmations", "prepared_at")
EXPORT = Step(RunStep.EXPORT, "pipeline.export", "exported_at")
RUN = (CLOSE, ALLOCATE, SCHEDULE, PREPARE, EXPORT)

# The emails (R9): the email queue takes every task whose name starts with `email.`.
SEND = Step(RunStep.SEND, "email.fan_out", "sending_at")
SEND_CHUNK = "email.send_chunk"
EMAIL_TASKS = "email.*"

TICK = "schedules.tick"  # beat's: sessions due to close, runs due to send, and whatever was stranded


def after(step: Step) -> Step | None:
    """The step that follows `step` in the run's chain; None after the last."""
    following = RUN[RUN.index(step) + 1:]
    return following[0] if following else None


def before(step: Step) -> Step | None:
    """The step whose stamp `step` waits for; None for the first."""
    earlier = RUN[:RUN.index(step)]
    return earlier[-1] if earlier else None


def last_done(run) -> RunStep:
    """How far a run (a row with the stamps) has come: the last of close, allocate, schedule, prepare
    and send whose work is stored. Export runs beside the emails and is left out."""
    done = CLOSE.code
    for step in (ALLOCATE, SCHEDULE, PREPARE, SEND):
        stamp = getattr(run, step.stamp)
        if stamp is None or stamp != stamp:  # None from a row, NaT from a frame
            break
        done = step.code
    return done
