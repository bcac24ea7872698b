"""One email as it was sent, rebuilt from the stored run, for the console (R9: reproducible at any time)."""

from __future__ import annotations

import dataclasses
import email
from email import policy

import pandas as pd
from sqlalchemy import Engine

from pipeline.adapters.db import lines, outbox, runs
from pipeline.adapters.mail.mime import check_address
from pipeline.adapters.mail.render import render

from .letters import confirmations
from .refusals import UnknownEmail

NOWHERE = "adresse-invalide@invalid"  # RFC 2606: a domain that can never receive


def message(engine: Engine, outbox_id: int, sender: str, finess: str | None = None) -> dict:
    """One email as it was sent, rebuilt from the stored run (R9: reproducible): its session,
    version, recipient, state, subject, headers To and Date, and its text part. With `finess`,
    only an email to that officine or to a professional named on its lines of that run.

    Every state reads, a failed one included: a register address that is no address (the reason
    it failed) is shown as it is, the message rebuilt to NOWHERE, never raised with it."""
    with engine.connect() as c:
        row = outbox.outbox_row(c, outbox_id)
        if row is None:
            raise UnknownEmail(outbox_id)
        run = runs.run_row(c, row.run_id)
        if finess is not None and not _to_officine(c, row, run, finess):
            raise UnknownEmail(outbox_id)
        rows = pd.DataFrame([{k: getattr(row, k) for k in ("id", "recipient_id", "recipient_kind", "message_id",
                                                          "replaces")}])
        letter = confirmations(c, run, rows, sender)[0]
    given = letter.email
    try:
        check_address(given)
        invalid = False
    except ValueError:
        invalid, letter = True, dataclasses.replace(letter, email=NOWHERE)
    parsed = email.message_from_bytes(render(letter), policy=policy.default)
    return {"outbox_id": outbox_id, "session_id": row.session_id, "version": int(row.version),
            "recipient_id": row.recipient_id, "recipient_kind": row.recipient_kind, "state": row.state,
            "sent_at": None if row.sent_at is None else pd.Timestamp(row.sent_at).isoformat(),
            "subject": str(parsed["Subject"]), "to": given if invalid else str(parsed["To"]),
            "address_invalid": invalid, "text": parsed.get_body(preferencelist=("plain",)).get_content()}


def _to_officine(c, row, run, finess: str) -> bool:
    if row.recipient_kind == "officine":
        return row.recipient_id == finess
    theirs = lines.read(c, run.id, run.session_id, officines=[finess]).lines
    return row.recipient_id in set(theirs["rpps"])
