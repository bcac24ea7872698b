"""A run's report for the console: drawn once per run version, kept in the database, served from there.

A report shows how many of the run's emails went out, so one drawn while they were still going out
is drawn again when those counts have changed; once the run has settled it never is.
"""

from __future__ import annotations

import datetime as dt
import json
import threading

from sqlalchemy import Engine

from pipeline.adapters import logs
from pipeline.adapters.db import outbox, runs
from pipeline.adapters.db.reports import store_report, stored_report
from pipeline.domain.summary import emails_summary

from .outputs import report_html as drawn

_DRAWING = threading.Lock()  # one drawing at a time in this process: parallel requests wait for the first


def report_html(engine: Engine, run: int, now: dt.datetime) -> str | None:
    """The run's report.html, from the database when its email counts are those it was drawn with;
    None when it cannot be drawn (logged, and recorded on the run as `vialflow run` records it)."""
    found = _stored(engine, run)
    if found is not None:
        return found
    with _DRAWING:
        found = _stored(engine, run)  # drawn by the request this one waited for
        if found is not None:
            return found
        try:
            html, emails = drawn(engine, run)
        except Exception as error:  # noqa: BLE001 - a view that fails is recorded, never the page's 500
            logs.log.error("the report could not be drawn", exc_info=True,
                           extra={"run_id": run, "step": "report", "event": "view_failed"})
            with engine.begin() as c:
                runs.stamp(c, run, view_failure=f"report.html: {type(error).__name__}"[:500])
            return None
        with engine.begin() as c:
            store_report(c, run, _key(emails), html, now)
    return html


def _stored(engine: Engine, run: int) -> str | None:
    with engine.connect() as c:
        emails = emails_summary(outbox.outbox_counts(c, run))
        row = stored_report(c, run)
    return row.html if row is not None and row.emails == _key(emails) else None


def _key(emails: dict) -> str:
    return json.dumps(emails, sort_keys=True)
