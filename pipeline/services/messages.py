"""One email as it was sent, rebuilt from the stored run, for the console (R9: reproducible at any time)."""

from __future__ import annotations

import email
from email import policy

import pandas as pd
from sqlalchemy import Engine

from pipeline.adapters.db import queries, runs
from pipeline.adapters.mail.render import render

from .letters import confirmations
from .refusals import UnknownEmail


def message(engine: Engine, outbox_id: int, sender: str) -> dict:
    """One email as it was sent, rebuilt from the stored run (R9: reproducible): its session,
    version, recipient, state, subject, headers To and Date, and its text part."""
    with engine.connect() as c:
        row = queries.outbox_row(c, outbox_id)
        if row is None:
            raise UnknownEmail(outbox_id)
        run = runs.run_row(c, row.run_id)
        rows = pd.DataFrame([{k: getattr(row, k) for k in ("id", "recipient_id", "recipient_kind", "message_id",
                                                          "replaces")}])
        letter = confirmations(c, run, rows, sender)[0]
    parsed = email.message_from_bytes(render(letter), policy=policy.default)
    return {"outbox_id": outbox_id, "session_id": row.session_id, "version": int(row.version),
            "recipient_id": row.recipient_id, "recipient_kind": row.recipient_kind, "state": row.state,
            "sent_at": None if row.sent_at is None else pd.Timestamp(row.sent_at).isoformat(),
            "subject": str(parsed["Subject"]), "to": str(parsed["To"]),
            "text": parsed.get_body(preferencelist=("plain",)).get_content()}
