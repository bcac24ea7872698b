"""Confirmation emails (R9): an outbox row per recipient written with the run, then sent in claimed chunks.

Every email is a row before it is a message. A chunk claims its rows, marks a few at a time
`sending` just before handing them to the SMTP server, and records each outcome at once; a
redelivered chunk (same task id) turns its own rows left in `sending` into `unknown`: they may
have gone out, so they are reported, never resent blindly.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict

import pandas as pd
from sqlalchemy import Connection, Engine, and_, bindparam, func, or_, select, update

from pipeline.domain.rules import NAMED_KINDS, Session
from pipeline.adapters.mail.render import Confirmation, Line, render
from pipeline.adapters.mail.smtp import Outcome, SmtpTarget, send_all_sync
from pipeline.settings import Settings
from pipeline.services.steps import DONE, T, _gate, _stamp, previous_run, session_rules
from pipeline.adapters.db.frames import insert_frame, read_frame, read_rows

RETRY_DELAYS = Settings.retry_delays  # seconds before attempt 2, 3, ...; then it has failed
BATCH = 32  # messages marked `sending`, or outcomes recorded, at once: a crash leaves at most two batches unknown
TERMINAL = ("sent", "failed", "unknown")


def message_id(session_id: str, version: int, recipient_id: str) -> str:
    return f"<{re.sub(r'[^A-Za-z0-9.-]', '-', session_id)}.r{version}.{recipient_id}@vialflow>"


def recipients(c: Connection, session_id: str, run: int) -> pd.DataFrame:
    """R9: every officine that ordered, and every doctor, occupational doctor and midwife named
    on a line, when the register gives an address. Columns recipient_id, recipient_kind."""
    o, d, p, pr = T["orders"], T["decisions"], T["pharmacies"], T["professionals"]
    lines = and_(o.c.session_id == session_id, o.c.order_id == d.c.order_id, d.c.run_id == run)
    officines = select(p.c.finess.label("recipient_id")).where(
        p.c.session_id == session_id, p.c.finess.in_(select(o.c.finess).join(d, lines)))
    named = select(pr.c.rpps.label("recipient_id"), pr.c.kind.label("recipient_kind")).where(
        pr.c.session_id == session_id,
        pr.c.rpps.in_(select(o.c.rpps).join(d, lines).where(o.c.effector.in_(NAMED_KINDS))))
    frame = pd.concat([read_frame(c, officines).assign(recipient_kind="officine"), read_frame(c, named)])
    return frame.sort_values("recipient_id", kind="stable").reset_index(drop=True)


def prepare_confirmations(engine: Engine, run: int, now: dt.datetime) -> str:
    """Write the run's outbox: one pending row per recipient."""
    with engine.begin() as c:
        outcome, row = _gate(c, run, "prepared_at", after="scheduled_at")
        if outcome:
            return outcome
        outbox = recipients(c, row.session_id, run)
        if row.version > 1:
            outbox = _changed_only(c, row, outbox)
        outbox["message_id"] = [message_id(row.session_id, row.version, r) for r in outbox["recipient_id"]]
        insert_frame(c, T["outbox"], outbox.assign(state="pending", attempts=0), run_id=run)
        _stamp(c, run, prepared_at=now)
    return DONE


def line_states(c: Connection, session_id: str, run: int, order_ids: list[str] | None = None) -> pd.DataFrame:
    """Each line of a run (or only `order_ids`) with what its recipients read of it:
    order_id, finess, effector, rpps, allocated, state."""
    o, d, v = T["orders"], T["decisions"], T["deliveries"]
    only = (lambda column: column.in_(order_ids or [""])) if order_ids is not None else (lambda column: True)
    lines = read_frame(c, select(d.c.order_id, o.c.finess, o.c.effector, o.c.rpps, d.c.allocated, d.c.status,
                                 d.c.reason)
                       .join(o, and_(o.c.session_id == session_id, o.c.order_id == d.c.order_id))
                       .where(d.c.run_id == run, only(d.c.order_id)))
    deliveries = read_frame(c, select(v.c.order_id, v.c.delivery_date, v.c.vials)
                            .where(v.c.run_id == run, only(v.c.order_id)))
    deliveries["piece"] = [f"{day or 'pending'}:{vials}" for day, vials in zip(deliveries["delivery_date"], deliveries["vials"])]
    pieces = deliveries.sort_values(["order_id", "piece"]).groupby("order_id")["piece"].agg(",".join)
    lines["state"] = (lines["allocated"].astype(str) + "|" + lines["status"] + "|" + lines["reason"] + "|"
                      + lines["order_id"].map(pieces).fillna(""))
    return lines


def _changed_only(c: Connection, run, outbox: pd.DataFrame) -> pd.DataFrame:
    """R11: a new version writes only to the recipients whose lines changed, or who are party to a
    new redistribution (R10), each email cancelling and replacing their previous one."""
    before = previous_run(c, run)
    old = line_states(c, run.session_id, before.id).set_index("order_id")["state"]
    new = line_states(c, run.session_id, run.id)
    changed = new[new["order_id"].map(old) != new["state"]]
    touched = set(changed["finess"]) | set(changed.loc[changed["effector"].isin(NAMED_KINDS), "rpps"])
    parties = _new_redistributions(run, before)
    for item in parties:
        line = new[new["order_id"] == item["order_id"]].iloc[0]
        touched |= {line["finess"], item["to_rpps"]} | ({line["rpps"]} if line["effector"] in NAMED_KINDS else set())
    receivers = {item["to_rpps"] for item in parties} - set(outbox["recipient_id"])
    if receivers:
        pr = T["professionals"]
        extra = read_frame(c, select(pr.c.rpps.label("recipient_id"), pr.c.kind.label("recipient_kind"))
                           .where(pr.c.session_id == run.session_id, pr.c.rpps.in_(sorted(receivers))))
        outbox = pd.concat([outbox, extra], ignore_index=True)
    outbox = outbox[outbox["recipient_id"].isin(touched)].reset_index(drop=True)
    box = T["outbox"]
    earlier = read_frame(c, select(box.c.recipient_id, box.c.message_id).join(T["runs"], T["runs"].c.id == box.c.run_id)
                         .where(T["runs"].c.session_id == run.session_id, T["runs"].c.version < run.version)
                         .order_by(T["runs"].c.version))
    last = earlier.drop_duplicates("recipient_id", keep="last").set_index("recipient_id")["message_id"]
    outbox["replaces"] = outbox["recipient_id"].map(last)
    return outbox


def _new_redistributions(run, before) -> list[dict]:
    done = len((before.changes or {}).get("redistribution", []))
    return (run.changes or {}).get("redistribution", [])[done:]


def start_sending(engine: Engine, run: int, now: dt.datetime) -> bool:
    """Mark the run's emails as handed over, once: True for the one caller that should fan out."""
    runs = T["runs"]
    with engine.begin() as c:
        claimed = c.execute(update(runs).where(runs.c.id == run, runs.c.sending_at.is_(None),
                                               runs.c.prepared_at.is_not(None)).values(sending_at=now))
    return claimed.rowcount == 1


def runs_to_confirm(engine: Engine, now: dt.datetime) -> list[int]:
    """Prepared runs whose emails have not been handed over and whose session's
    `confirmation_at` has passed (R9); and runs with emails due for another try."""
    runs, sessions, box = T["runs"], T["sessions"], T["outbox"]
    now = now.astimezone(dt.timezone.utc)
    with engine.connect() as c:
        starting = c.execute(select(runs.c.id).join(sessions, sessions.c.id == runs.c.session_id).where(
            runs.c.prepared_at.is_not(None), runs.c.sending_at.is_(None), sessions.c.confirmation_at <= now)
            .order_by(runs.c.id)).scalars().all()
        retrying = c.execute(select(box.c.run_id).where(box.c.state == "retry", box.c.next_attempt_at <= now)
                             .distinct().order_by(box.c.run_id)).scalars().all()
    return sorted(set(starting) | set(retrying))


def due(engine: Engine, run: int, now: dt.datetime) -> list[int]:
    """Outbox ids of the run that are ready to go: never tried, or due for another try."""
    box = T["outbox"]
    with engine.connect() as c:
        return list(c.execute(select(box.c.id).where(
            box.c.run_id == run,
            or_(box.c.state == "pending", and_(box.c.state == "retry", box.c.next_attempt_at <= now)))
            .order_by(box.c.id)).scalars())


def outbox_counts(engine: Engine, run: int) -> dict[str, int]:
    box = T["outbox"]
    with engine.connect() as c:
        rows = c.execute(select(box.c.state, func.count()).where(box.c.run_id == run).group_by(box.c.state)).all()
    return {state: int(count) for state, count in rows}


def send_chunk(engine: Engine, ids: list[int], claimant: str, now: dt.datetime, target: SmtpTarget,
               sender: str, connections: int = 8, delays: tuple[int, ...] = RETRY_DELAYS) -> dict[str, int]:
    """Send the outbox rows `ids` that are still due; returns how many ended in each state.

    Rows are marked `sending` a batch at a time just before they go out, and outcomes are recorded
    a batch at a time as they come back: a crash leaves at most two batches in `sending`.
    """
    box = T["outbox"]
    with engine.begin() as c:
        # This same task died before: what it was sending may have gone out.
        c.execute(update(box).where(box.c.id.in_(ids), box.c.state == "sending", box.c.claimed_by == claimant)
                  .values(state="unknown", detail="the sending worker was lost while sending"))
        c.execute(update(box).where(
            box.c.id.in_(ids),
            or_(box.c.state == "pending", and_(box.c.state == "retry", box.c.next_attempt_at <= now),
                and_(box.c.state == "claimed", box.c.claimed_by == claimant)))
            .values(state="claimed", claimed_by=claimant))
        mine = read_frame(c, select(box).where(box.c.id.in_(ids), box.c.state == "claimed",
                                               box.c.claimed_by == claimant).order_by(box.c.id))
        letters = _letters(c, mine, sender)
    counts: dict[str, int] = defaultdict(int)
    attempts = dict(zip(mine["id"].tolist(), mine["attempts"].tolist()))
    outcomes: list[dict] = []
    envelope_sender = _address(sender)

    def record() -> None:
        with engine.begin() as c:
            c.execute(update(box).where(box.c.id == bindparam("outbox_id")), outcomes)
        outcomes.clear()

    def on_result(outbox_id: int, outcome: Outcome, detail: str) -> None:
        values = _after(outcome, detail, attempts[outbox_id] + 1, now, delays)
        counts[values["state"]] += 1
        outcomes.append({"outbox_id": outbox_id, "sent_at": None, "next_attempt_at": None, **values})
        if len(outcomes) >= BATCH:
            record()

    def feed():
        for start in range(0, len(letters), BATCH):
            batch = []
            for outbox_id, confirmation in letters[start:start + BATCH]:
                try:
                    batch.append((outbox_id, envelope_sender, confirmation.email, render(confirmation)))
                except ValueError:  # an address or name the register gave that no email can carry
                    on_result(outbox_id, Outcome.FAILED, "not sent: the register's address or name cannot be used")
            with engine.begin() as c:
                c.execute(update(box).where(box.c.id.in_([item[0] for item in batch])).values(state="sending"))
            yield from batch

    try:
        send_all_sync(target, feed(), connections=connections, on_result=on_result)
    finally:
        if outcomes:
            record()
        _release(engine, ids, claimant, now, delays)
    return dict(counts)


def _release(engine: Engine, ids: list[int], claimant: str, now: dt.datetime, delays: tuple[int, ...]) -> None:
    """After a chunk, whatever happened: rows it claimed but never started go back to be tried
    again, rows it left `sending` (no outcome came back) are unknown. Nothing stays stuck."""
    box = T["outbox"]
    mine = and_(box.c.id.in_(ids), box.c.claimed_by == claimant)
    with engine.begin() as c:
        c.execute(update(box).where(mine, box.c.state == "claimed").values(
            state="retry", next_attempt_at=now + dt.timedelta(seconds=delays[0] if delays else 0)))
        c.execute(update(box).where(mine, box.c.state == "sending").values(
            state="unknown", detail="no reply was recorded for this message"))


def _after(outcome: Outcome, detail: str, attempt: int, now: dt.datetime, delays: tuple[int, ...]) -> dict:
    values = {"attempts": attempt, "detail": detail[:500]}
    if outcome is Outcome.SENT:
        return {**values, "state": "sent", "sent_at": now}
    if outcome is Outcome.RETRY and attempt <= len(delays):
        return {**values, "state": "retry", "next_attempt_at": now + dt.timedelta(seconds=delays[attempt - 1])}
    if outcome is Outcome.UNKNOWN:
        return {**values, "state": "unknown"}
    return {**values, "state": "failed"}


def _letters(c: Connection, rows: pd.DataFrame, sender: str) -> list[tuple[int, Confirmation]]:
    """(outbox id, what its email says) for claimed rows, from the stored run."""
    if rows.empty:
        return []
    run = c.execute(select(T["runs"]).where(T["runs"].c.id == int(rows["run_id"].iloc[0]))).one()
    return list(zip(rows["id"].tolist(), confirmations(c, run, rows, sender)))


def _aware(when: dt.datetime) -> dt.datetime:
    return when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)


def _address(mailbox: str) -> str:
    found = re.search(r"<([^<>]+)>", mailbox)
    return found.group(1) if found else mailbox.strip()


def confirmations(c: Connection, run, rows: pd.DataFrame, sender: str) -> list[Confirmation]:
    """What each outbox row's email says, read back from the run: reproducible at any time."""
    session = session_rules(c, run.session_id)
    officines = [r for r, k in zip(rows["recipient_id"], rows["recipient_kind"]) if k == "officine"]
    people = [r for r, k in zip(rows["recipient_id"], rows["recipient_kind"]) if k != "officine"]
    lines = _lines(c, run, officines, people)
    pharmacies = _register(c, "pharmacies", "finess", run.session_id, officines)
    named = sorted(set(people) | {line["rpps"] for line in lines} - {""})
    professionals = _register(c, "professionals", "rpps", run.session_id, named)
    changes = _what_changed(c, run, [line["order_id"] for line in lines]) if run.version > 1 else {}
    by_officine: dict[str, list[Line]] = defaultdict(list)
    by_person: dict[str, list[Line]] = defaultdict(list)
    for line in lines:
        built = _line(line, session, professionals)
        by_officine[line["finess"]].append(built)
        if line["effector"] in NAMED_KINDS:
            by_person[line["rpps"]].append(built)
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
            changes=tuple(changes.get(recipient_id, ())),
            # Dated from the stored run, not the clock, so that the message can be rebuilt as sent.
            date=date))
    return found


def _what_changed(c: Connection, run, order_ids: list[str]) -> dict[str, list[str]]:
    """For a new version: per recipient of these lines, short French sentences saying what
    changed (R11). Only these lines and the new redistributions are read, not the whole run."""
    before = previous_run(c, run)
    redistributed = _new_redistributions(run, before)
    wanted = sorted(set(order_ids) | {item["order_id"] for item in redistributed})
    old = line_states(c, run.session_id, before.id, wanted).set_index("order_id")
    new = line_states(c, run.session_id, run.id, wanted)
    said: dict[str, list[str]] = defaultdict(list)

    def tell(line, sentence: str) -> None:
        said[line["finess"]].append(sentence)
        if line["effector"] in NAMED_KINDS:
            said[line["rpps"]].append(sentence)

    for line in new[new["order_id"].map(old["state"]) != new["state"]].to_dict("records"):
        was = int(old.loc[line["order_id"], "allocated"])
        if was != line["allocated"]:
            tell(line, f"Commande {line['order_id']} : {was} → {line['allocated']} flacon(s) servi(s).")
        else:
            tell(line, f"Commande {line['order_id']} : dates de livraison modifiées.")
    for item in redistributed:
        line = new[new["order_id"] == item["order_id"]].iloc[0].to_dict()
        tell(line, f"Commande {item['order_id']} : {item['vials']} flacon(s) non récupéré(s) redistribué(s) "
                   "à un autre professionnel de santé.")
        said[item["to_rpps"]].append(f"{item['vials']} flacon(s) de la commande {item['order_id']} vous sont "
                                     f"redistribués : à retirer à l'officine {line['finess']}.")
    return said


def _lines(c: Connection, run, officines: list[str], people: list[str]) -> list[dict]:
    """The run's lines of these officines and professionals, in submission order, with deliveries."""
    o, d, v = T["orders"], T["decisions"], T["deliveries"]
    # Each line with its deliveries in one read (a line without any has one row, its delivery empty).
    query = (select(d.c.order_id, o.c.finess, o.c.effector, o.c.rpps, o.c.vaccine, o.c.injection, d.c.requested,
                    d.c.allocated, d.c.status, d.c.reason, d.c.rank, v.c.delivery_date, v.c.vials)
             .join(d, and_(d.c.run_id == run.id, d.c.order_id == o.c.order_id))
             .outerjoin(v, and_(v.c.run_id == run.id, v.c.order_id == o.c.order_id)))
    # Two look-ups, each on its own index, rather than one OR that scans every line.
    by_officine = query.where(o.c.session_id == run.session_id, o.c.finess.in_(officines or [""]))
    by_person = query.where(o.c.session_id == run.session_id, o.c.rpps.in_(people or [""]),
                            o.c.effector.in_(NAMED_KINDS))
    found: dict[str, dict] = {}
    for rows in (read_rows(c, by_officine), read_rows(c, by_person)):
        fresh: dict[str, dict] = {}
        for row in rows:
            if row["order_id"] in found:  # already read through its officine
                continue
            line = fresh.get(row["order_id"])
            if line is None:
                line = fresh[row["order_id"]] = {**row, "deliveries": []}
            if row["vials"] is not None:
                day = row["delivery_date"]
                day = dt.date.fromisoformat(day) if isinstance(day, str) else day  # SQLite gives text
                line["deliveries"].append((day, int(row["vials"])))
        found.update(fresh)
    lines = sorted(found.values(), key=lambda line: line["rank"])
    for line in lines:
        line["deliveries"] = tuple(sorted(line["deliveries"], key=_by_date_pending_last))
    return lines


def _by_date_pending_last(piece: tuple[dt.date | None, int]) -> tuple:
    return piece[0] is None, piece[0] or dt.date.min


def _register(c: Connection, name: str, key: str, session_id: str, ids: list[str]) -> dict[str, dict]:
    table = T[name]
    rows = read_rows(c, select(table.c[key], table.c.name, table.c.email).where(
        table.c.session_id == session_id, table.c[key].in_(ids or [""])))
    return {row[key]: row for row in rows}


def _line(line: dict, session: Session, professionals: dict[str, dict]) -> Line:
    vaccine = session.vaccines.get(line["vaccine"])
    person = professionals.get(line["rpps"]) if line["effector"] in NAMED_KINDS else None
    return Line(order_id=line["order_id"], effector=line["effector"], rpps=line["rpps"],
                professional=person["name"] if person else "", vaccine=line["vaccine"],
                vaccine_label=vaccine.label if vaccine else line["vaccine"], injection=line["injection"],
                requested=int(line["requested"]), allocated=int(line["allocated"]), status=line["status"],
                reason=line["reason"], deliveries=line["deliveries"])
