"""The beat side: one periodic tick closes every session whose `closes_at` has passed (R1).

The tick may run twice or race with another: closing is idempotent (one run per session),
so a duplicate only passes an already-done baton on.
"""

from __future__ import annotations

import datetime as dt

from pipeline import services
from workers.app import app
from workers.context import engine, now as clock
from workers.tasks import TRANSIENT, close_session


@app.task(name="schedules.tick", autoretry_for=TRANSIENT, retry_backoff=2, max_retries=3)
def tick(now: str | None = None) -> list[str]:
    """`now` (ISO 8601) stands in for the clock in tests and replays."""
    at = dt.datetime.fromisoformat(now) if now else clock()
    due = services.sessions_due(engine(), at)
    for session_id in due:
        close_session.delay(session_id)
    return due
