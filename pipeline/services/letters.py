"""What each outbox row's email says, read back from the stored run: reproducible at any time."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

import pandas as pd
from sqlalchemy import Connection

from pipeline.adapters.db import lines, outbox, runs, sessions
from pipeline.domain.changes import Redistribution
from pipeline.domain.confirmation import Confirmation, Gift, Line
from pipeline.domain.outbox import line_states, what_changed
from pipeline.domain.rules import NAMED_KINDS, Session
from pipeline.domain.vocabulary import Reason, Status


def confirmations(c: Connection, run, rows: pd.DataFrame, sender: str) -> list[Confirmation]:
    """The emails of these outbox rows (recipient_id, recipient_kind, message_id, replaces) of `run`."""
    session = sessions.session_rules(c, run.session_id)
    officines = [r for r, k in zip(rows["recipient_id"], rows["recipient_kind"]) if k == "officine"]
    people = [r for r, k in zip(rows["recipient_id"], rows["recipient_kind"]) if k != "officine"]
    read = lines.read(c, run.id, run.session_id, officines=officines, people=people, trace=True)
    ordered = read.lines.sort_values("rank", kind="stable").to_dict("records")
    days = _deliveries(read.deliveries, _depots(c, run.session_id))
    # R10: the redistributions of the run (cumulative), to name on the giving lines and the receivers' emails
    redistributed = run.changes.redistribution
    receivers = set(people) & {item.to_rpps for item in redistributed}
    origin = ({line["order_id"]: line for line in lines.read(c, run.id, run.session_id, order_ids=sorted(
        {item.order_id for item in redistributed if item.to_rpps in receivers})).lines.to_dict("records")}
              if receivers else {})
    pharmacies = sessions.contacts(c, "pharmacies", run.session_id,
                                  sorted(set(officines) | {line["finess"] for line in origin.values()}))
    named = sorted(set(people) | {line["rpps"] for line in ordered} - {""} | {item.to_rpps for item in redistributed})
    professionals = sessions.contacts(c, "professionals", run.session_id, named)
    kinds = {}
    if redistributed:
        frame = outbox.professionals_kinds(c, run.session_id, named)
        kinds = dict(zip(frame["recipient_id"], frame["recipient_kind"]))
    changes = _what_changed(c, run, read.lines["order_id"].tolist()) if run.version > 1 else {}
    given = _given(redistributed, professionals, kinds)
    by_officine: dict[str, list[Line]] = defaultdict(list)
    by_person: dict[str, list[Line]] = defaultdict(list)
    for line in ordered:
        built = _line(line, days.get(line["order_id"], ((), ())), session, professionals,
                      given.get(line["order_id"], ()))
        by_officine[line["finess"]].append(built)
        if line["effector"] in NAMED_KINDS:
            by_person[line["rpps"]].append(built)
    if receivers:
        on = _redistributed_on(c, run)
        for index, item in enumerate(redistributed):
            if item.to_rpps in receivers:
                by_person[item.to_rpps].append(_received(item, on[index], origin[item.order_id], session,
                                                         professionals, kinds, pharmacies))
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


def _depots(c: Connection, session_id: str) -> dict[str, str]:
    """Each depot as an email names it: `OCP Répartition (dépôt 69)` (register: wholesaler, name)."""
    depots = sessions.registers(c, session_id, "depots")
    named = {}
    for depot_id, wholesaler, name in zip(depots["depot_id"], depots["wholesaler"], depots["name"]):
        rest = name[len(wholesaler):].lstrip(" ,-–") if name.startswith(wholesaler) else name
        named[depot_id] = f"{wholesaler} ({rest})" if rest else wholesaler
    return named


def _given(redistributed: tuple[Redistribution, ...], professionals: dict[str, dict],
           kinds: dict[str, str]) -> dict[str, tuple[Gift, ...]]:
    """R10: per giving order id, its vials given and to whom."""
    found: dict[str, list] = defaultdict(list)
    for item in redistributed:
        person = professionals.get(item.to_rpps)
        found[item.order_id].append(Gift(item.vials, item.to_rpps, person["name"] if person else None,
                                         kinds.get(item.to_rpps, "")))
    return {order_id: tuple(items) for order_id, items in found.items()}


def _redistributed_on(c: Connection, run) -> list[dt.date]:
    """The effective date of each of the run's redistributions: that of the version that added it."""
    versions = runs.session_runs(c, [run.session_id])
    changes = runs.run_changes(c, [run.session_id])
    dates: list[dt.date] = []
    for version in versions[versions["version"] <= run.version].sort_values("version").itertuples():
        made = changes[int(version.id)]
        added = len(made.redistribution) - len(dates)
        if added > 0:
            dates += [made.effective] * added
    return dates


def _received(item: Redistribution, day: dt.date, origin: dict, session: Session, professionals: dict[str, dict],
              kinds: dict[str, str], pharmacies: dict[str, dict]) -> Line:
    """R10, on the receiving professional's email: the vials they may collect at the giving officine from
    the redistribution's effective date. `redistribution_from` in confirmation.csv is that officine's FINESS."""
    to, finess = item.to_rpps, origin["finess"]
    vaccine = session.vaccines.get(origin["vaccine"])
    officine = pharmacies.get(finess)
    count = item.vials
    return Line(order_id=item.order_id, effector=kinds.get(to, ""), rpps=to,
                professional=(professionals.get(to) or {}).get("name", ""), vaccine=origin["vaccine"],
                vaccine_label=vaccine.label if vaccine else origin["vaccine"], injection=origin["injection"],
                requested=count, allocated=count, status=Status.SERVED.value, reason=Reason.OK.value,
                deliveries=((day, count),),
                redistribution_from=finess,
                received_from=f"{officine['name']} (FINESS {finess})" if officine else f"FINESS {finess}",
                doses_per_vial=vaccine.doses_per_vial if vaccine else 0)


def _what_changed(c: Connection, run, order_ids: list[str]) -> dict[str, list[str]]:
    """Only these lines and the new redistributions are read from both versions, not the whole run."""
    before = runs.previous_run(c, run)
    redistributed = run.changes.added_since(before.changes)
    wanted = sorted(set(order_ids) | {item.order_id for item in redistributed})
    old = lines.read(c, before.id, run.session_id, order_ids=wanted)
    new = lines.read(c, run.id, run.session_id, order_ids=wanted)
    names = {}
    if redistributed:  # the officines and receivers of the new redistributions, named beside their numbers
        given = new.lines[new.lines["order_id"].isin([item.order_id for item in redistributed])]
        for register, ids in (("pharmacies", sorted(set(given["finess"]))),
                              ("professionals", sorted({item.to_rpps for item in redistributed}))):
            names |= {key: row["name"] for key, row in sessions.contacts(c, register, run.session_id, ids).items()}
    return what_changed(line_states(old.lines, old.deliveries), line_states(new.lines, new.deliveries), redistributed,
                        names)


def _deliveries(frame: pd.DataFrame, depots: dict[str, str]) -> dict[str, tuple[tuple, tuple]]:
    """Each line's (date, vials), dated days first in date order, the pending remainder last (R8), and
    who delivers each."""
    days: dict[str, list] = defaultdict(list)
    for order_id, day, vials, depot in zip(frame["order_id"], frame["delivery_date"], frame["vials"],
                                           frame["depot_id"]):
        days[order_id].append((day, int(vials), depots.get(depot, depot)))
    found = {}
    for order_id, pieces in days.items():
        pieces.sort(key=lambda piece: (piece[0] is None, piece[0] or dt.date.min))
        found[order_id] = (tuple((day, vials) for day, vials, _ in pieces), tuple(depot for _, _, depot in pieces))
    return found


def _aware(when: dt.datetime) -> dt.datetime:
    return when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)


def _line(line: dict, deliveries: tuple[tuple, tuple], session: Session, professionals: dict[str, dict],
          given: tuple = ()) -> Line:
    vaccine = session.vaccines.get(line["vaccine"])
    person = professionals.get(line["rpps"]) if line["effector"] in NAMED_KINDS else None
    return Line(order_id=line["order_id"], effector=line["effector"], rpps=line["rpps"],
                professional=person["name"] if person else "", vaccine=line["vaccine"],
                vaccine_label=vaccine.label if vaccine else line["vaccine"], injection=line["injection"],
                requested=int(line["requested"]), allocated=int(line["allocated"]), status=line["status"],
                reason=line["reason"], deliveries=deliveries[0], depots=deliveries[1], given=given,
                cap=None if pd.isna(line["cap"]) else int(line["cap"]),
                doses_per_vial=vaccine.doses_per_vial if vaccine else 0)
