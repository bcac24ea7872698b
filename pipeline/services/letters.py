"""What each outbox row's email says, read back from the stored run: reproducible at any time."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

import pandas as pd
from sqlalchemy import Connection

from pipeline.adapters.db import queries
from pipeline.adapters.mail.render import Confirmation, Line
from pipeline.domain.outbox import line_states, new_redistributions, what_changed
from pipeline.domain.rules import NAMED_KINDS, Session


def confirmations(c: Connection, run, rows: pd.DataFrame, sender: str) -> list[Confirmation]:
    """The emails of these outbox rows (recipient_id, recipient_kind, message_id, replaces) of `run`."""
    session = queries.session_rules(c, run.session_id)
    officines = [r for r, k in zip(rows["recipient_id"], rows["recipient_kind"]) if k == "officine"]
    people = [r for r, k in zip(rows["recipient_id"], rows["recipient_kind"]) if k != "officine"]
    read = queries.lines(c, run.id, run.session_id, officines=officines, people=people, trace=True)
    lines = read.lines.sort_values("rank", kind="stable").to_dict("records")
    days = _deliveries(read.deliveries)
    pharmacies = queries.contacts(c, "pharmacies", run.session_id, officines)
    named = sorted(set(people) | {line["rpps"] for line in lines} - {""})
    professionals = queries.contacts(c, "professionals", run.session_id, named)
    changes = _what_changed(c, run, read.lines["order_id"].tolist()) if run.version > 1 else {}
    by_officine: dict[str, list[Line]] = defaultdict(list)
    by_person: dict[str, list[Line]] = defaultdict(list)
    for line in lines:
        built = _line(line, days.get(line["order_id"], ()), session, professionals)
        by_officine[line["finess"]].append(built)
        if line["effector"] in NAMED_KINDS:
            by_person[line["rpps"]].append(built)
    # Dated from the stored run, not the clock, so that the message can be rebuilt as sent.
    date = session.confirms if run.version == 1 else _aware(run.created_at)
    found = []
    for recipient_id, kind, identifier, replaces in zip(rows["recipient_id"], rows["recipient_kind"],
                                                        rows["message_id"], rows["replaces"]):
        officine = kind == "officine"
        who = (pharmacies if officine else professionals)[recipient_id]
        found.append(Confirmation(
            session_id=session.id, session_title=session.title, reference=session.reference,
            run_version=run.version, recipient_id=recipient_id, recipient_kind=kind,
            name=who["name"], email=who["email"], sender=sender, message_id=identifier,
            lines=tuple((by_officine if officine else by_person).get(recipient_id, ())),
            replaces=replaces if isinstance(replaces, str) else None,
            changes=tuple(changes.get(recipient_id, ())), date=date))
    return found


def _what_changed(c: Connection, run, order_ids: list[str]) -> dict[str, list[str]]:
    """Only these lines and the new redistributions are read from both versions, not the whole run."""
    before = queries.previous_run(c, run)
    redistributed = new_redistributions(run.changes, before.changes)
    wanted = sorted(set(order_ids) | {item["order_id"] for item in redistributed})
    old = queries.lines(c, before.id, run.session_id, order_ids=wanted)
    new = queries.lines(c, run.id, run.session_id, order_ids=wanted)
    return what_changed(line_states(old.lines, old.deliveries), line_states(new.lines, new.deliveries), redistributed)


def _deliveries(frame: pd.DataFrame) -> dict[str, tuple[tuple[dt.date | None, int], ...]]:
    """Each line's (date, vials), dated days first in date order, the pending remainder last (R8)."""
    days: dict[str, list] = defaultdict(list)
    for order_id, day, vials in zip(frame["order_id"], frame["delivery_date"], frame["vials"]):
        days[order_id].append((day, int(vials)))
    return {k: tuple(sorted(v, key=lambda piece: (piece[0] is None, piece[0] or dt.date.min))) for k, v in days.items()}


def _aware(when: dt.datetime) -> dt.datetime:
    return when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)


def _line(line: dict, deliveries: tuple, session: Session, professionals: dict[str, dict]) -> Line:
    vaccine = session.vaccines.get(line["vaccine"])
    person = professionals.get(line["rpps"]) if line["effector"] in NAMED_KINDS else None
    return Line(order_id=line["order_id"], effector=line["effector"], rpps=line["rpps"],
                professional=person["name"] if person else "", vaccine=line["vaccine"],
                vaccine_label=vaccine.label if vaccine else line["vaccine"], injection=line["injection"],
                requested=int(line["requested"]), allocated=int(line["allocated"]), status=line["status"],
                reason=line["reason"], deliveries=deliveries,
                cap=None if pd.isna(line["cap"]) else int(line["cap"]))
