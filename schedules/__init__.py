"""The beat side: one periodic tick closes every session whose `closes_at` has passed (R1) and
hands over the emails of every run whose `confirmation_at` has passed (R9), or that has emails
due for another try.

The tick may run twice or race with another: closing is idempotent (one run per session), a
run's emails are handed over once (a stamp claimed atomically), and each email is claimed
before it is sent, so a duplicate tick sends nothing twice.
"""

from __future__ import annotations

import datetime as dt

from pipeline import bootstrap
from pipeline.entrypoints.celery_app import app
from pipeline.services import confirmations, runs
from workers.tasks import TRANSIENT, close_session, fan_out, now as clock


@app.task(name="schedules.tick", autoretry_for=TRANSIENT, retry_backoff=2, max_retries=3)
def tick(now: str | None = None) -> list[str]:
    """`now` (ISO 8601) stands in for the clock in tests and replays."""
    at = dt.datetime.fromisoformat(now) if now else clock()
    engine = bootstrap.current().engine
    due = runs.sessions_due(engine, at)
    for session_id in due:
        close_session.delay(session_id)
    for run in confirmations.runs_to_confirm(engine, at):
        confirmations.start_sending(engine, run, at)
        fan_out.delay(run)
    return due
