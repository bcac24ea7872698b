"""What a signed-in person of the self-service space reads: their officines as support's look-up gives
them, or their own lines as a professional, each with its explanation, deliveries and emails."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import Engine

from pipeline.adapters.db import lines, outbox, runs, sessions
from pipeline.adapters.db import self_service as db
from pipeline.domain.rules import NAMED_KINDS
from pipeline.domain.vocabulary import Role

from . import explain, messages, support
from .refusals import UnknownEmail
from .self_service import Visitor


def my_deliveries(engine: Engine, visitor: Visitor) -> dict:
    """An officine or a pharmacist: `{"officines": [lookup object, ...]}` (support.lookup's). A
    professional: `{"lines": [...]}`, their lines in every session and version, each with its
    explanation, deliveries and emails."""
    if visitor.role in (Role.OFFICINE, Role.PHARMACIEN):
        return {"officines": [support.lookup(engine, finess) for finess in visitor.finesses]}
    return {"lines": professional_lines(engine, visitor.rpps)}


def professional_lines(engine: Engine, rpps: str | None) -> list[dict]:
    """The professional's own lines (doctor, occupational doctor, midwife), newest session and version
    first, each with its explanation, its deliveries (date, vials, doses, depot, wholesaler), its
    pending vials, and every email the run sent to the professional."""
    if not rpps:
        return []
    found = []
    with engine.connect() as c:
        present = db.professional_sessions(c, rpps, NAMED_KINDS)
        versions = runs.session_runs(c, present).sort_values(["session_id", "version"], ascending=[True, False])
        emails = outbox.officine_emails(c, "", present, people=[rpps])
        for session_id in sorted(present, reverse=True):
            doses = {key: v.doses_per_vial for key, v in sessions.session_rules(c, session_id).vaccines.items()}
            depots = sessions.registers(c, session_id, "depots").set_index("depot_id")["wholesaler"].to_dict()
            for run in versions[versions["session_id"] == session_id].itertuples():
                read = lines.read(c, int(run.id), session_id, people=[rpps])
                sent = [_email(e) for e in emails[emails["run_id"] == int(run.id)].itertuples(index=False)]
                for line in read.lines.sort_values(["rank", "order_id"], kind="stable").itertuples(index=False):
                    days = read.deliveries[read.deliveries["order_id"] == line.order_id]
                    found.append({
                        "session_id": session_id, "version": int(run.version), "order_id": line.order_id,
                        "finess": line.finess, "effector": line.effector, "vaccine": line.vaccine,
                        "injection": line.injection, "requested": int(line.requested),
                        "allocated": int(line.allocated), "status": line.status, "reason": line.reason,
                        "deliveries": _deliveries(days, doses.get(line.vaccine, 0), depots),
                        "pending_vials": int(days.loc[days["status"] == "pending", "vials"].sum()),
                        "emails": sent})
    runs_of = {}
    for line in found:
        runs_of.setdefault((line["session_id"], line["version"]), []).append(line["order_id"])
    said = {key: explanations(engine, *key, order_ids) for key, order_ids in runs_of.items()}
    for line in found:
        line["explanation"] = said[(line["session_id"], line["version"])][line["order_id"]]
    return found


def _deliveries(days: pd.DataFrame, per_vial: int, depots: dict) -> list[dict]:
    """A line's delivery days, dated first in date order, the pending remainder last (R8)."""
    ordered = days.sort_values(["delivery_date", "depot_id"], na_position="last")
    return [{"date": _day(d.delivery_date), "vials": int(d.vials), "doses": int(d.vials) * per_vial,
             "depot_id": d.depot_id, "wholesaler": depots.get(d.depot_id), "status": d.status}
            for d in ordered.itertuples(index=False)]


def _email(row) -> dict:
    return {"outbox_id": int(row.outbox_id), "message_id": row.message_id, "state": row.state,
            "sent_at": None if _missing(row.sent_at) else pd.Timestamp(row.sent_at).isoformat(),
            "replaces": None if _missing(row.replaces) else row.replaces}


def _day(value) -> str | None:
    return None if _missing(value) else pd.Timestamp(value).date().isoformat()


def _missing(value) -> bool:
    return value is None or (not isinstance(value, str) and pd.isna(value))


def explanations(engine: Engine, session_id: str, version: int, order_ids: list[str]) -> dict[str, str]:
    """The French explanation of each line, as `vialflow explain` says it."""
    said = {}
    for order_id, found in explain.explain_lines(engine, session_id, version, order_ids).items():
        text = " ; ".join(found["phrases"])
        said[order_id] = text[:1].upper() + text[1:] + "."
    return said


def officine_details(engine: Engine, found: dict) -> dict:
    """For the page of officines: each line's explanation (`"session/version/order_id"`) and each
    session's doses per vial of each vaccine."""
    said, doses = {}, {}
    with engine.connect() as c:
        for officine in found["officines"]:
            for session in officine["sessions"]:
                rules = sessions.session_rules(c, session["session_id"])
                doses[session["session_id"]] = {k: v.doses_per_vial for k, v in rules.vaccines.items()}
    for officine in found["officines"]:
        for session in officine["sessions"]:
            for run in session["runs"]:
                for order_id, text in explanations(engine, session["session_id"], run["version"],
                                                   [line["order_id"] for line in run["lines"]]).items():
                    said[f"{session['session_id']}/{run['version']}/{order_id}"] = text
    return {"explanations": said, "doses": doses}


def my_message(engine: Engine, visitor: Visitor, outbox_id: int, sender: str) -> dict:
    """One email as it was sent, if it went to the visitor's officine (or was about its lines), or to
    the visitor as a professional; else UnknownEmail, as for an email that does not exist."""
    for finess in visitor.finesses:
        try:
            return messages.message(engine, outbox_id, sender, finess)
        except UnknownEmail:
            continue
    if visitor.role == Role.PROFESSIONNEL and visitor.rpps:
        found = messages.message(engine, outbox_id, sender)
        if found["recipient_kind"] != "officine" and found["recipient_id"] == visitor.rpps:
            return found
    raise UnknownEmail(outbox_id)
