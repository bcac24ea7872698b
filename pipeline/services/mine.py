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
            rules = sessions.session_rules(c, session_id)
            depots = sessions.registers(c, session_id, "depots").set_index("depot_id")["wholesaler"].to_dict()
            for run in versions[versions["session_id"] == session_id].itertuples():
                read = lines.read(c, int(run.id), session_id, people=[rpps])
                mine = emails[emails["run_id"] == int(run.id)]
                for line in read.lines.sort_values(["rank", "order_id"], kind="stable").itertuples(index=False):
                    days = read.deliveries[read.deliveries["order_id"] == line.order_id]
                    per_vial = rules.vaccines[line.vaccine].doses_per_vial if line.vaccine in rules.vaccines else 0
                    found.append({
                        "session_id": session_id, "version": int(run.version), "order_id": line.order_id,
                        "finess": line.finess, "effector": line.effector, "vaccine": line.vaccine,
                        "injection": line.injection, "requested": int(line.requested),
                        "allocated": int(line.allocated), "status": line.status, "reason": line.reason,
                        "deliveries": [{"date": None if d.delivery_date is None or pd.isna(d.delivery_date)
                                        else pd.Timestamp(d.delivery_date).date().isoformat(),
                                        "vials": int(d.vials), "doses": int(d.vials) * per_vial,
                                        "depot_id": d.depot_id, "wholesaler": depots.get(d.depot_id),
                                        "status": d.status}
                                       for d in days.sort_values(["delivery_date", "depot_id"], na_position="last")
                                       .itertuples(index=False)],
                        "pending_vials": int(days.loc[days["status"] == "pending", "vials"].sum()),
                        "emails": [{"outbox_id": int(e.outbox_id), "message_id": e.message_id, "state": e.state,
                                    "sent_at": None if e.sent_at is None or pd.isna(e.sent_at)
                                    else pd.Timestamp(e.sent_at).isoformat(),
                                    "replaces": None if e.replaces is None or pd.isna(e.replaces) else e.replaces}
                                   for e in mine.itertuples(index=False)]})
    said: dict = {}
    for line in found:
        key = (line["session_id"], line["version"])
        if key not in said:
            said[key] = explanations(engine, *key, [x["order_id"] for x in found if (x["session_id"], x["version"]) == key])
        line["explanation"] = said[key][line["order_id"]]
    return found


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
