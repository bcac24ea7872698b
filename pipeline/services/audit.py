"""The audit log: what each person did in the console, when and from where (the `actions` table).

Written here, read by admins, changed by nobody: no function of this module updates or deletes.
A target is a FINESS, an order id or a run, never an address, a name or an RPPS.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
from sqlalchemy import Engine

from pipeline.adapters.db import actions


def record(engine: Engine, now: dt.datetime, actor: str, action: str, *, address: str | None = None,
           session_id: str | None = None, run_id: int | None = None, target: str | None = None,
           reason: str | None = None, detail: dict | None = None) -> None:
    with engine.begin() as c:
        actions.record_action(c, now, actor, action, session_id=session_id, run_id=run_id, target=target,
                              reason=reason, address=address, detail=detail)


def log(engine: Engine, limit: int = 500, before: int | None = None, **where: object) -> list[dict]:
    """The newest actions first (those older than the action `before`), as plain values."""
    with engine.connect() as c:
        frame = actions.actions(c, limit, before, **where)
    return [{"id": int(r["id"]), "at": _iso(r["at"]), "actor": r["actor"], "action": r["action"], "session_id": r["session_id"],
             "run_id": None if pd.isna(r["run_id"]) else int(r["run_id"]), "target": r["target"],
             "reason": r["reason"], "address": r["address"], "detail": r["detail"]}
            for r in frame.astype(object).where(frame.notna(), None).to_dict("records")]


def _iso(value) -> str | None:
    return None if value is None else pd.Timestamp(value).isoformat()
