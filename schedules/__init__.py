"""The beat side: one periodic tick closes every session whose `closes_at` has passed (R1) and
hands over the emails of every run whose `confirmation_at` has passed (R9); and it finishes
what was stranded: emails due for another try or whose message or sender was lost (their lease
ran out), runs whose next step's message was lost, runs whose emails settled.

The tick may run twice or race with another: closing is idempotent (one run per session), a
run's emails are handed over once (a stamp claimed atomically), and each email is claimed
before it is sent, so a duplicate tick sends nothing twice.
"""

from __future__ import annotations

import datetime as dt

from pipeline import bootstrap
from pipeline.entrypoints.celery_app import app
from pipeline.services import chain, confirmations, runs
from workers.tasks import TRANSIENT, allocate, close_session, export, fan_out, now as clock


@app.task(name=chain.TICK, autoretry_for=TRANSIENT, retry_backoff=2, max_retries=3)
def tick(now: str | None = None) -> list[str]:
    """`now` (ISO 8601) stands in for the clock in tests and replays."""
    at = dt.datetime.fromisoformat(now) if now else clock()
    wiring = bootstrap.current()
    engine = wiring.engine
    due = runs.sessions_due(engine, at)
    for session_id in due:
        close_session.delay(session_id)
    for run in runs.stalled(engine, at - dt.timedelta(seconds=wiring.settings.lease_seconds)):
        allocate.delay(run)  # each step already done passes the baton on to the next
    started = [run for run in confirmations.runs_to_confirm(engine, at) if confirmations.start_sending(engine, run, at)]
    recovered = confirmations.recover(engine, at)
    for run in sorted(set(started) | set(recovered["runs"])):
        fan_out.delay(run)
    for run in recovered["settled"]:
        export.delay(run)
    return due
