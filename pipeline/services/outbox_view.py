"""A session's emails for the console, and a deliberate resend (until `confirmations` offers both)."""

from __future__ import annotations

import datetime as dt
import email
from email import policy

import pandas as pd
from sqlalchemy import Engine

from pipeline.adapters.db import queries
from pipeline.adapters.mail.render import render

from .letters import confirmations

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


def message(engine: Engine, outbox_id: int, sender: str) -> dict:
    """One email as it was sent, rebuilt from the stored run (R9: reproducible): its session,
    version, recipient, state, subject, headers To and Date, and its text part."""
    with engine.connect() as c:
        row = queries.outbox_row(c, outbox_id)
        if row is None:
            raise LookupError(f"unknown email {outbox_id}")
        run = queries.run_row(c, row.run_id)
        rows = pd.DataFrame([{k: getattr(row, k) for k in ("id", "recipient_id", "recipient_kind", "message_id",
                                                          "replaces")}])
        letter = confirmations(c, run, rows, sender)[0]
    parsed = email.message_from_bytes(render(letter), policy=policy.default)
    return {"outbox_id": outbox_id, "session_id": row.session_id, "version": int(row.version),
            "recipient_id": row.recipient_id, "recipient_kind": row.recipient_kind, "state": row.state,
            "sent_at": None if row.sent_at is None else pd.Timestamp(row.sent_at).isoformat(),
            "subject": str(parsed["Subject"]), "to": str(parsed["To"]),
            "text": parsed.get_body(preferencelist=("plain",)).get_content()}
