"""A session's emails for the console, and a deliberate resend (until `confirmations` offers both)."""

from __future__ import annotations

import datetime as dt

import pandas as pd
from sqlalchemy import Engine

from pipeline.adapters.db import queries

from . import ServiceError

RESENDABLE = ("unknown", "failed")


def outbox_listing(engine: Engine, session_id: str, run: int | None = None, state: str | None = None) -> pd.DataFrame:
    with engine.connect() as c:
        if queries.session_row(c, session_id) is None:
            raise ServiceError(f"unknown session {session_id}")
        rows = queries.session_outbox(c, session_id, state)
    return rows if run is None else rows[rows["run_id"] == run]


def resend(engine: Engine, session_id: str, run: int | None, state: str | None, operator: str, reason: str,
           now: dt.datetime, ids: list[int] | None = None) -> list[int]:
    if not reason.strip():
        raise ServiceError("a reason is required (--reason)")
    listed = outbox_listing(engine, session_id, run, state)
    chosen = listed[listed["state"].isin(RESENDABLE)]
    if ids is not None:
        chosen = chosen[chosen["id"].isin(ids)]
    with engine.begin() as c:
        reopened = queries.reopen_emails(c, [int(i) for i in chosen["id"]], RESENDABLE)
        if reopened:
            queries.record_action(c, now, operator.strip(), "resend", session_id=session_id, run_id=run,
                                  reason=reason.strip(), target=f"{len(reopened)} email(s)",
                                  detail={"outbox_ids": reopened})
    return reopened
