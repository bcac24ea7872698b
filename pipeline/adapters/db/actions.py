"""What people did (resends, reallocations, purges, the console's look-ups): written, never changed."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
from sqlalchemy import Connection, select

from .frames import read_frame
from .tables import Base

T = Base.metadata.tables


def record_action(c: Connection, at: dt.datetime, actor: str, action: str, *, session_id: str | None = None,
                  run_id: int | None = None, target: str | None = None, reason: str | None = None,
                  address: str | None = None, detail: dict | None = None) -> None:
    c.execute(T["actions"].insert().values(at=at, actor=actor, action=action, session_id=session_id, run_id=run_id,
                                           target=target, reason=reason, address=address, detail=detail))


def actions(c: Connection, limit: int = 500, before: int | None = None, **where: object) -> pd.DataFrame:
    """The newest actions first (older than the action `before`, for the journal's next page);
    `where` filters on columns (action="resend", session_id=...)."""
    table = T["actions"]
    query = select(table).where(*(table.c[name] == value for name, value in where.items()))
    if before is not None:
        query = query.where(table.c.id < before)
    found = read_frame(c, query.order_by(table.c.id.desc()).limit(limit))
    found["detail"] = [json.loads(d) if isinstance(d, str) else d for d in found["detail"]]
    return found
