"""The console's stored reports: one report.html a run, with the email counts it was drawn with."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Connection, select, update
from sqlalchemy.exc import IntegrityError

from .tables import Base

T = Base.metadata.tables


def stored_report(c: Connection, run: int):
    """(emails, html) of the run's stored report, or None."""
    r = T["run_reports"]
    return c.execute(select(r.c.emails, r.c.html).where(r.c.run_id == run)).first()


def store_report(c: Connection, run: int, emails: str, html: str, now: dt.datetime) -> None:
    """Keep the report; another console process that stored the same run first keeps its (equal) copy."""
    r = T["run_reports"]
    if c.execute(update(r).where(r.c.run_id == run).values(emails=emails, html=html, built_at=now)).rowcount:
        return
    try:
        with c.begin_nested():
            c.execute(r.insert().values(run_id=run, emails=emails, html=html, built_at=now))
    except IntegrityError:
        pass
