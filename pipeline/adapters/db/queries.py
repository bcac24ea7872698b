"""Every query of the pipeline: what the services read and write, and nothing else does.

One module, over 300 lines, on purpose: the tables are shared by every use case, and keeping
each statement beside the others is what lets a reader see every index a query needs, every
lock a step takes and the one read model of a line with its deliveries (`lines`) that emails,
support and the output files all use. Functions take an open connection; the services own the
transactions.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

import pandas as pd
from sqlalchemy import Connection, and_, bindparam, except_, func, or_, select, true, union, update

from pipeline.domain.allocate import TRACE_COLUMNS
from pipeline.domain.rules import NAMED_KINDS, Session

from .frames import insert_frame, read_frame
from .tables import Base

T = Base.metadata.tables
REGISTERS = {"pharmacies": ["finess", "name", "email", "department", "depot_id"],
             "professionals": ["rpps", "kind", "name", "email", "finess"],
             "depots": ["depot_id", "wholesaler", "name", "capacity_vials", "weekdays"],
             "depot_days": ["depot_id", "date", "capacity_vials"]}
ORDER_COLUMNS = ["order_id", "line", "submitted_at", "finess", "effector", "rpps", "vaccine", "injection", "vials"]
STORED_DECISION_COLUMNS = ["order_id", "rank", "requested", "capped", "allocated", "status", "reason", *TRACE_COLUMNS]
STORED_DELIVERY_COLUMNS = ["order_id", "depot_id", "vaccine", "delivery_date", "vials", "status"]
LINE_COLUMNS = ["order_id", "finess", "effector", "rpps", "vaccine", "injection", "requested", "allocated",
                "status", "reason", "rank", "capped", "submitted_at"]
STAMPS = ("allocated_at", "scheduled_at", "prepared_at", "sending_at", "exported_at", "settled_at")


# Sessions and their inputs.

def session_hash(c: Connection, session_id: str) -> str | None:
    return c.execute(select(T["sessions"].c.input_hash).where(T["sessions"].c.id == session_id)).scalar()


def insert_session(c: Connection, scenario, digest: str, now: dt.datetime, rules: dict) -> None:
    """The session row, its registers, orders and rejections, as loaded."""
    session = scenario.session
    c.execute(T["sessions"].insert().values(
        id=session.id, rules=rules, input_hash=digest, closes_at=session.closes,
        confirmation_at=session.confirms, state="open", loaded_at=now))
    for name, columns in REGISTERS.items():
        insert_frame(c, T[name], getattr(scenario, name)[columns], session_id=session.id)
    insert_frame(c, T["orders"], scenario.orders[ORDER_COLUMNS], session_id=session.id)
    insert_frame(c, T["rejections"], scenario.rejections, session_id=session.id)


def session_row(c: Connection, session_id: str, lock: bool = False):
    query = select(T["sessions"]).where(T["sessions"].c.id == session_id)
    return c.execute(query.with_for_update() if lock else query).first()


def hold_session(c: Connection, session_id: str, holder: str, now: dt.datetime, until: dt.datetime,
                 gone=lambda holder: False) -> str | None:
    """Take or renew the session's hold for `holder` until `until`; None when taken, else who holds it.
    A hold whose time ran out, or whose holder `gone` says is dead, is taken over."""
    sessions = T["sessions"]
    row = c.execute(select(sessions.c.held_by, sessions.c.held_until).where(sessions.c.id == session_id)
                    .with_for_update()).first()
    if row is not None and row.held_by and row.held_by != holder and row.held_until is not None:
        held_until = row.held_until if row.held_until.tzinfo else row.held_until.replace(tzinfo=dt.timezone.utc)
        if held_until > now and not gone(row.held_by):
            return row.held_by
    c.execute(update(sessions).where(sessions.c.id == session_id).values(held_by=holder, held_until=until))
    return None


def release_session(c: Connection, session_id: str, holder: str) -> None:
    sessions = T["sessions"]
    c.execute(update(sessions).where(sessions.c.id == session_id, sessions.c.held_by == holder)
              .values(held_by=None, held_until=None))


def session_rules(c: Connection, session_id: str) -> Session:
    rules = c.execute(select(T["sessions"].c.rules).where(T["sessions"].c.id == session_id)).scalar_one()
    return Session.model_validate(rules)


def close(c: Connection, session_id: str, input_hash: str, now: dt.datetime) -> None:
    """R1: the session closed and its first run opened."""
    sessions, runs = T["sessions"], T["runs"]
    c.execute(runs.insert().values(session_id=session_id, version=1, operator="scheduler", reason="session close",
                                   changes={}, input_hash=input_hash, created_at=now))
    c.execute(update(sessions).where(sessions.c.id == session_id).values(state="closed", closed_at=now))


def sessions_due(c: Connection, now: dt.datetime) -> list[str]:
    sessions = T["sessions"]
    return list(c.execute(select(sessions.c.id).where(sessions.c.state == "open",
                                                      sessions.c.closes_at <= now.astimezone(dt.timezone.utc))
                          .order_by(sessions.c.closes_at, sessions.c.id)).scalars())


def registers(c: Connection, session_id: str, name: str) -> pd.DataFrame:
    table = T[name]
    frame = read_frame(c, select(*[table.c[col] for col in REGISTERS[name]])
                       .where(table.c.session_id == session_id).order_by(*table.primary_key.columns))
    return frame if len(frame) else pd.DataFrame(columns=REGISTERS[name])


def session_orders(c: Connection, session_id: str) -> pd.DataFrame:
    orders = T["orders"]
    frame = read_frame(c, select(*[orders.c[col] for col in ORDER_COLUMNS]).where(orders.c.session_id == session_id))
    frame["submitted_at"] = pd.to_datetime(frame["submitted_at"], utc=True)
    return frame


def known_orders(c: Connection, session_id: str, order_ids: list[str]) -> set[str]:
    orders = T["orders"]
    return set(c.execute(select(orders.c.order_id).where(orders.c.session_id == session_id,
                                                         orders.c.order_id.in_(order_ids or [""]))).scalars())


def rejections(c: Connection, session_id: str) -> pd.DataFrame:
    rj = T["rejections"]
    frame = read_frame(c, select(rj.c.line, rj.c.order_id, rj.c.message)
                       .where(rj.c.session_id == session_id).order_by(rj.c.line))
    return frame if len(frame) else pd.DataFrame(columns=["line", "order_id", "message"])


def contacts(c: Connection, name: str, session_id: str, ids: list[str]) -> dict[str, dict]:
    """Name and address of these officines (`pharmacies`) or professionals, by FINESS or RPPS."""
    table = T[name]
    key = table.c["finess" if name == "pharmacies" else "rpps"]
    frame = read_frame(c, select(key.label("id"), table.c.name, table.c.email).where(
        table.c.session_id == session_id, key.in_(ids or [""])))
    return {row["id"]: row for row in frame.to_dict("records")}


# Runs.

def run_row(c: Connection, run: int):
    return c.execute(select(T["runs"]).where(T["runs"].c.id == run)).one()


def run_id(c: Connection, session_id: str, version: int | None = None) -> int | None:
    runs = T["runs"]
    query = select(runs.c.id).where(runs.c.session_id == session_id)
    query = query.where(runs.c.version == version) if version else query.order_by(runs.c.version.desc()).limit(1)
    return c.execute(query).scalar()


def latest_run(c: Connection, session_id: str):
    runs = T["runs"]
    return c.execute(select(runs).where(runs.c.session_id == session_id)
                     .order_by(runs.c.version.desc()).limit(1)).first()


def previous_run(c: Connection, run):
    runs = T["runs"]
    return c.execute(select(runs).where(runs.c.session_id == run.session_id, runs.c.version == run.version - 1)).first()


def run_with_hash(c: Connection, session_id: str, digest: str) -> int | None:
    runs = T["runs"]
    return c.execute(select(runs.c.id).where(runs.c.session_id == session_id, runs.c.input_hash == digest)).scalar()


def insert_run(c: Connection, session_id: str, version: int, operator: str, reason: str, changes: dict,
               digest: str, now: dt.datetime) -> int:
    """A new run version (IntegrityError when another took the same version meanwhile)."""
    runs = T["runs"]
    return c.execute(runs.insert().values(
        session_id=session_id, version=version, operator=operator, reason=reason, changes=changes,
        input_hash=digest, created_at=now).returning(runs.c.id)).scalar_one()


def lock_run(c: Connection, run: int):
    """The run's row, locked for this transaction; None when another transaction holds it.
    Raises LookupError for a run that does not exist."""
    runs = T["runs"]
    row = c.execute(select(runs).where(runs.c.id == run).with_for_update(skip_locked=True)).first()
    if row is None and c.execute(select(runs.c.id).where(runs.c.id == run)).first() is None:
        raise LookupError(f"unknown run {run}")
    return row


def stamp(c: Connection, run: int, **values) -> None:
    c.execute(update(T["runs"]).where(T["runs"].c.id == run).values(**values))


def record_failure(c: Connection, target: int | str | None, message: str) -> None:
    """A step failed for good: why, on the run (or on the session, for the close)."""
    table = T["sessions"] if isinstance(target, str) else T["runs"]
    c.execute(update(table).where(table.c.id == target).values(error=message[:2000]))


def session_runs(c: Connection, session_ids: list[str]) -> pd.DataFrame:
    r = T["runs"]
    return read_frame(c, select(r.c.id, r.c.session_id, r.c.version, r.c.created_at, r.c.operator, r.c.reason,
                                r.c.input_hash, *[r.c[n] for n in STAMPS], r.c.error, r.c.view_failure)
                      .where(r.c.session_id.in_(session_ids)).order_by(r.c.session_id, r.c.version))


def run_changes(c: Connection, session_ids: list[str]) -> dict[int, dict]:
    r = T["runs"]  # JSON decoded by SQLAlchemy, which read_frame's driver values are not
    return dict(c.execute(select(r.c.id, r.c.changes).where(r.c.session_id.in_(session_ids))).all())


def run_counts(c: Connection, session_id: str) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Per run of the session: lines and allocated vials; vials per delivery status; emails per state."""
    r, d, v, b = T["runs"], T["decisions"], T["deliveries"], T["outbox"]
    of_session = r.c.session_id == session_id
    lines = read_frame(c, select(d.c.run_id, func.count().label("lines"), func.sum(d.c.allocated).label("vials"))
                       .join(r, r.c.id == d.c.run_id).where(of_session).group_by(d.c.run_id))
    vials = read_frame(c, select(v.c.run_id, v.c.status, func.sum(v.c.vials).label("vials"))
                       .join(r, r.c.id == v.c.run_id).where(of_session).group_by(v.c.run_id, v.c.status))
    emails = read_frame(c, select(b.c.run_id, b.c.state, func.count().label("n"))
                        .join(r, r.c.id == b.c.run_id).where(of_session).group_by(b.c.run_id, b.c.state))
    return lines, vials, emails


# Decisions and deliveries.

def insert_decisions(c: Connection, run: int, decisions: pd.DataFrame) -> None:
    insert_frame(c, T["decisions"], decisions[STORED_DECISION_COLUMNS], run_id=run)


def insert_deliveries(c: Connection, run: int, deliveries: pd.DataFrame) -> None:
    insert_frame(c, T["deliveries"], deliveries[STORED_DELIVERY_COLUMNS], run_id=run)


def served_lines(c: Connection, session_id: str, run: int) -> pd.DataFrame:
    """Lines with vials to deliver: order_id, finess, depot_id, vaccine, allocated, rank."""
    d, o, p = T["decisions"], T["orders"], T["pharmacies"]
    return read_frame(c, select(d.c.order_id, o.c.finess, p.c.depot_id, o.c.vaccine, d.c.allocated, d.c.rank)
                      .join(o, and_(o.c.session_id == session_id, o.c.order_id == d.c.order_id))
                      .join(p, and_(p.c.session_id == session_id, p.c.finess == o.c.finess))
                      .where(d.c.run_id == run, d.c.allocated > 0))


def delivered(c: Connection, run: int, day: dt.date) -> pd.DataFrame:
    """A run's deliveries dated on or before `day`: order_id, depot_id, vaccine, delivery_date, vials."""
    v = T["deliveries"]
    return read_frame(c, select(v.c.order_id, v.c.depot_id, v.c.vaccine, v.c.delivery_date, v.c.vials).where(
        v.c.run_id == run, v.c.status == "scheduled", v.c.delivery_date <= day))


@dataclass(frozen=True)
class Lines:
    """The read model of a run's lines: each line (LINE_COLUMNS) and its deliveries
    (order_id, depot_id, vaccine, delivery_date, vials, status; `delivery_date` None when pending)."""

    lines: pd.DataFrame
    deliveries: pd.DataFrame


def lines(c: Connection, run: int, session_id: str, *, order_ids: list[str] | None = None,
          officines: list[str] | None = None, people: list[str] | None = None, trace: bool = False) -> Lines:
    """The run's lines, all of them or only those of `order_ids`, or of these officines and of
    these professionals (a doctor's, occupational doctor's or midwife's own lines), with their
    deliveries; with `trace`, each line's TRACE_COLUMNS too. Officines and people are two look-ups on
    their own index rather than one OR that scans every line."""
    o, d, v = T["orders"], T["decisions"], T["deliveries"]
    columns = LINE_COLUMNS + (TRACE_COLUMNS if trace else [])
    base = (select(*[o.c[n] for n in LINE_COLUMNS[1:6]], d.c.order_id, d.c.requested, d.c.allocated, d.c.status,
                   d.c.reason, d.c.rank, d.c.capped, o.c.submitted_at, *[d.c[n] for n in TRACE_COLUMNS if trace])
            .join(d, and_(d.c.run_id == run, d.c.order_id == o.c.order_id)).where(o.c.session_id == session_id))
    if officines is None and people is None:
        wheres = [d.c.order_id.in_(order_ids or [""])] if order_ids is not None else [true()]
    else:
        wheres = ([o.c.finess.in_(officines or [""])] if officines is not None else []) + (
            [and_(o.c.rpps.in_(people or [""]), o.c.effector.in_(NAMED_KINDS))] if people is not None else [])
    found = pd.concat([read_frame(c, base.where(where)) for where in wheres], ignore_index=True)
    found = found.drop_duplicates("order_id")[columns].reset_index(drop=True)
    days = select(v.c.order_id, v.c.depot_id, v.c.vaccine, v.c.delivery_date, v.c.vials, v.c.status).where(v.c.run_id == run)
    if order_ids is None and officines is None and people is None:
        deliveries = read_frame(c, days)
    else:  # the deliveries of the lines found, through the (run, order) index
        deliveries = read_frame(c, days.where(v.c.order_id.in_(found["order_id"].tolist() or [""])))
    return Lines(found, deliveries)


def changed_lines(c: Connection, before: int, after: int) -> list[str]:
    """The order ids whose decision (allocated, status, reason) or deliveries (each date and its vials,
    as many times as they occur) differ between two stored runs of a session, or that only `after` has:
    the lines whose emails may change (R11), found by the database without reading either run whole."""
    d, v = T["decisions"], T["deliveries"]
    old = d.alias("old")
    decided = (select(d.c.order_id)
               .join(old, and_(old.c.run_id == before, old.c.order_id == d.c.order_id), isouter=True)
               .where(d.c.run_id == after, or_(old.c.order_id.is_(None), old.c.allocated != d.c.allocated,
                                               old.c.status != d.c.status, old.c.reason != d.c.reason)))

    def pieces(run: int):
        return (select(v.c.order_id, v.c.delivery_date, v.c.vials, func.count().label("times"))
                .where(v.c.run_id == run).group_by(v.c.order_id, v.c.delivery_date, v.c.vials))

    moved = [except_(pieces(a), pieces(b)).subquery() for a, b in ((after, before), (before, after))]
    query = union(decided, *(select(m.c.order_id) for m in moved))
    return sorted(c.execute(query).scalars())


def order_sessions(c: Connection, order_id: str) -> list[str]:
    """The sessions that have an order line with this id (ids are unique within a session only)."""
    o = T["orders"]
    return list(c.execute(select(o.c.session_id).where(o.c.order_id == order_id).distinct()
                          .order_by(o.c.session_id)).scalars())


def first_refused_for_supply(c: Connection, run: int, session_id: str, vaccine: str) -> dt.datetime | None:
    """R7: the submission instant of the vaccine's first line, in submission order, refused for supply."""
    o, d = T["orders"], T["decisions"]
    found = read_frame(c, select(o.c.submitted_at).join(d, and_(d.c.run_id == run, d.c.order_id == o.c.order_id))
                       .where(o.c.session_id == session_id, o.c.vaccine == vaccine, d.c.status == "refused",
                              d.c.reason == "supply").order_by(d.c.rank).limit(1))
    return found["submitted_at"].iloc[0] if len(found) else None


def officine_sessions(c: Connection, finess: str, session_id: str | None) -> pd.DataFrame:
    """The sessions the officine appears in, in the register or only on orders (refused as
    `unknown_pharmacy`), newest first: id, closes_at, state, rules."""
    s, p, o = T["sessions"], T["pharmacies"], T["orders"]
    present = union(select(p.c.session_id).where(p.c.finess == finess),
                    select(o.c.session_id).where(o.c.finess == finess))
    query = select(s.c.id, s.c.closes_at, s.c.state).where(s.c.id.in_(present))
    if session_id is not None:
        query = query.where(s.c.id == session_id)
    return read_frame(c, query.order_by(s.c.closes_at.desc(), s.c.id))


def session_titles(c: Connection, session_ids: list[str]) -> dict[str, str]:
    s = T["sessions"]
    return {k: (rules or {}).get("title", "")
            for k, rules in c.execute(select(s.c.id, s.c.rules).where(s.c.id.in_(session_ids))).all()}


def officine(c: Connection, finess: str, session_ids: list[str]) -> pd.DataFrame:
    """The officine in each session's register, with its depot's name and wholesaler."""
    p, dp = T["pharmacies"], T["depots"]
    return read_frame(c, select(p.c.session_id, p.c.finess, p.c.name, p.c.email, p.c.department, p.c.depot_id,
                                dp.c.name.label("depot_name"), dp.c.wholesaler)
                      .outerjoin(dp, and_(dp.c.session_id == p.c.session_id, dp.c.depot_id == p.c.depot_id))
                      .where(p.c.session_id.in_(session_ids), p.c.finess == finess))


# The outbox.

def recipients(c: Connection, session_id: str, run: int) -> pd.DataFrame:
    """R9: every officine that ordered, and every doctor, occupational doctor and midwife named
    on a line, when the register gives an address. Columns recipient_id, recipient_kind."""
    o, d, p, pr = T["orders"], T["decisions"], T["pharmacies"], T["professionals"]
    of_run = and_(o.c.session_id == session_id, o.c.order_id == d.c.order_id, d.c.run_id == run)
    officines = select(p.c.finess.label("recipient_id")).where(
        p.c.session_id == session_id, p.c.finess.in_(select(o.c.finess).join(d, of_run)))
    named = select(pr.c.rpps.label("recipient_id"), pr.c.kind.label("recipient_kind")).where(
        pr.c.session_id == session_id,
        pr.c.rpps.in_(select(o.c.rpps).join(d, of_run).where(o.c.effector.in_(NAMED_KINDS))))
    frame = pd.concat([read_frame(c, officines).assign(recipient_kind="officine"), read_frame(c, named)])
    return frame.sort_values("recipient_id", kind="stable").reset_index(drop=True)


def professionals_kinds(c: Connection, session_id: str, rpps: list[str]) -> pd.DataFrame:
    pr = T["professionals"]
    return read_frame(c, select(pr.c.rpps.label("recipient_id"), pr.c.kind.label("recipient_kind"))
                      .where(pr.c.session_id == session_id, pr.c.rpps.in_(rpps)))


def earlier_messages(c: Connection, session_id: str, version: int, recipients: list[str] | None = None) -> pd.Series:
    """Each recipient's (of `recipients`, else all) last Message-ID before this version (what a new
    email cancels and replaces)."""
    box, runs = T["outbox"], T["runs"]
    chosen = [box.c.recipient_id.in_(recipients or [""])] if recipients is not None else []
    earlier = read_frame(c, select(box.c.recipient_id, box.c.message_id).join(runs, runs.c.id == box.c.run_id)
                         .where(runs.c.session_id == session_id, runs.c.version < version, *chosen)
                         .order_by(runs.c.version))
    return earlier.drop_duplicates("recipient_id", keep="last").set_index("recipient_id")["message_id"]


def insert_outbox(c: Connection, run: int, outbox: pd.DataFrame) -> None:
    insert_frame(c, T["outbox"], outbox.assign(state="pending", attempts=0), run_id=run)


def start_sending(c: Connection, run: int, now: dt.datetime) -> bool:
    runs = T["runs"]
    return c.execute(update(runs).where(runs.c.id == run, runs.c.sending_at.is_(None),
                                        runs.c.prepared_at.is_not(None)).values(sending_at=now)).rowcount == 1


def runs_to_confirm(c: Connection, now: dt.datetime) -> list[int]:
    """Prepared runs whose emails have not been handed over and whose session's `confirmation_at` has passed (R9)."""
    runs, sessions = T["runs"], T["sessions"]
    now = now.astimezone(dt.timezone.utc)
    return list(c.execute(select(runs.c.id).join(sessions, sessions.c.id == runs.c.session_id).where(
        runs.c.prepared_at.is_not(None), runs.c.sending_at.is_(None), sessions.c.confirmation_at <= now)
        .order_by(runs.c.id)).scalars())


def _ready(box, now: dt.datetime):
    """Rows that may be handed out now: never tried, or due for another try."""
    return or_(box.c.state == "pending", and_(box.c.state == "retry", box.c.next_attempt_at <= now))


def _free(box, now: dt.datetime):
    return or_(box.c.lease_until.is_(None), box.c.lease_until <= now)


def due(c: Connection, run: int, now: dt.datetime) -> list[int]:
    box = T["outbox"]
    return list(c.execute(select(box.c.id).where(box.c.run_id == run, _ready(box, now)).order_by(box.c.id)).scalars())


def hand_out(c: Connection, run: int, now: dt.datetime, until: dt.datetime, window: int | None = None) -> list[int]:
    """The run's rows ready to go and not already handed to the email queue (or handed so long ago
    that the message must have been lost), leased to the queue `until`. With `window`, only as many
    as keep at most `window` of the run's rows waiting in the queue; rows another hand-out is taking
    at the same moment are skipped (PostgreSQL), so two hand-outs never give the same row."""
    box = T["outbox"]
    chosen = select(box.c.id).where(box.c.run_id == run, _ready(box, now), _free(box, now))
    if window is None:
        chosen = chosen.order_by(box.c.id)
    else:
        queued = c.execute(select(func.count()).where(box.c.run_id == run, box.c.state.in_(("pending", "retry")),
                                                      box.c.lease_until > now)).scalar_one()
        if queued >= window:
            return []
        # No ORDER BY: the first rows an index gives, rather than sorting every row left at each hand-out.
        chosen = chosen.limit(window - queued).with_for_update(skip_locked=True)
    ids = sorted(c.execute(chosen).scalars())
    for start in range(0, len(ids), 10_000):
        c.execute(update(box).where(box.c.id.in_(ids[start:start + 10_000])).values(lease_until=until))
    return ids


def outbox_counts(c: Connection, run: int) -> dict[str, int]:
    box = T["outbox"]
    rows = c.execute(select(box.c.state, func.count()).where(box.c.run_id == run).group_by(box.c.state)).all()
    return {state: int(count) for state, count in rows}


def claim(c: Connection, ids: list[int], claimant: str, now: dt.datetime, until: dt.datetime) -> pd.DataFrame:
    """Claim the rows of `ids` still due for `claimant` until `until` and return them. Rows this
    same claimant left `sending` (it died while sending) become unknown: they may have gone out."""
    box = T["outbox"]
    c.execute(update(box).where(box.c.id.in_(ids), box.c.state == "sending", box.c.claimed_by == claimant)
              .values(state="unknown", detail="the sending worker was lost while sending", lease_until=None))
    c.execute(update(box).where(
        box.c.id.in_(ids), or_(_ready(box, now), and_(box.c.state == "claimed", box.c.claimed_by == claimant)))
        .values(state="claimed", claimed_by=claimant, lease_until=until))
    return read_frame(c, select(box).where(box.c.id.in_(ids), box.c.state == "claimed",
                                           box.c.claimed_by == claimant).order_by(box.c.id))


def mark_sending(c: Connection, ids: list[int], claimant: str, until: dt.datetime) -> set[int]:
    """Mark `claimant`'s claimed rows among `ids` as going out; returns those it still held (a claim
    whose lease ran out may have been handed to another sender: that row is not sent twice)."""
    box = T["outbox"]
    mine = and_(box.c.id.in_(ids), box.c.state == "claimed", box.c.claimed_by == claimant)
    held = set(c.execute(select(box.c.id).where(mine)).scalars())
    c.execute(update(box).where(box.c.id.in_(held), box.c.claimed_by == claimant).values(state="sending",
                                                                                          lease_until=until))
    return held


def record_outcomes(c: Connection, outcomes: list[dict]) -> None:
    """Each dict: outbox_id and the columns to set."""
    box = T["outbox"]
    c.execute(update(box).where(box.c.id == bindparam("outbox_id")),
              [{**outcome, "lease_until": None} for outcome in outcomes])


def release(c: Connection, ids: list[int], claimant: str, retry_at: dt.datetime) -> None:
    box = T["outbox"]
    mine = and_(box.c.id.in_(ids), box.c.claimed_by == claimant)
    c.execute(update(box).where(mine, box.c.state == "claimed").values(state="retry", next_attempt_at=retry_at,
                                                                        lease_until=None))
    c.execute(update(box).where(mine, box.c.state == "sending").values(
        state="unknown", detail="no reply was recorded for this message", lease_until=None))


LOST_WHILE_SENDING = "no reply was recorded before the sender's lease ran out: it may have gone out"


def recover_leases(c: Connection, now: dt.datetime, session_id: str | None = None, everything: bool = False) -> dict:
    """Stale claims back to `pending`, stale `sending` rows to `unknown` (never resent blindly).
    With `everything`, every claim of the session's runs whatever its lease: its sender is known
    to be gone (the embedded worker of a command that was stopped)."""
    box, runs = T["outbox"], T["runs"]
    # A claim without a lease was taken before leases existed (migration 0003): it counts as run out.
    scope = [or_(box.c.lease_until.is_(None), box.c.lease_until <= now)] if not everything else []
    if session_id is not None:
        scope.append(box.c.run_id.in_(select(runs.c.id).where(runs.c.session_id == session_id)))
    lost = c.execute(update(box).where(box.c.state == "sending", *scope).values(
        state="unknown", detail=LOST_WHILE_SENDING, lease_until=None)).rowcount
    back = c.execute(update(box).where(box.c.state == "claimed", *scope).values(
        state="pending", claimed_by=None, lease_until=None)).rowcount
    if everything:  # rows handed to a queue that died with its command
        c.execute(update(box).where(box.c.state.in_(("pending", "retry")), *scope).values(lease_until=None))
    return {"unknown": lost, "pending": back}


def runs_with_stranded_emails(c: Connection, now: dt.datetime) -> list[int]:
    """Runs whose emails were handed over and that still have rows ready and unleased: their
    message never reached a worker, or it was lost."""
    box, runs = T["outbox"], T["runs"]
    # One EXISTS per run handed over: it stops at the first such row, where a DISTINCT over the rows
    # read every row still waiting, at each of beat's ticks (a quarter of a second at 400 000 emails).
    stranded = select(box.c.id).where(box.c.run_id == runs.c.id, _ready(box, now), _free(box, now)).exists()
    return list(c.execute(select(runs.c.id).where(runs.c.sending_at.is_not(None), runs.c.settled_at.is_(None), stranded)
                          .order_by(runs.c.id)).scalars())


def stalled_runs(c: Connection, before: dt.datetime) -> list[int]:
    """Runs not yet prepared, without an error, whose last step is older than `before`: the message
    that should carry them on was lost (a broker no worker consumes, a purged queue)."""
    runs = T["runs"]
    last = func.coalesce(runs.c.scheduled_at, runs.c.allocated_at, runs.c.created_at)
    return list(c.execute(select(runs.c.id).where(runs.c.prepared_at.is_(None), runs.c.error.is_(None), last <= before)
                          .order_by(runs.c.id)).scalars())


def settle(c: Connection, run: int, now: dt.datetime) -> bool:
    """Stamp the run settled once none of its emails is still waiting; True for the one caller
    that stamped it."""
    box, runs = T["outbox"], T["runs"]
    waiting = select(box.c.id).where(box.c.run_id == run, box.c.state.not_in(("sent", "failed", "unknown"))).exists()
    return c.execute(update(runs).where(runs.c.id == run, runs.c.settled_at.is_(None), runs.c.sending_at.is_not(None),
                                        ~waiting).values(settled_at=now)).rowcount == 1


def runs_unsettled(c: Connection) -> list[int]:
    runs = T["runs"]
    return list(c.execute(select(runs.c.id).where(runs.c.sending_at.is_not(None), runs.c.settled_at.is_(None))
                          .order_by(runs.c.id)).scalars())


def runs_of_outbox(c: Connection, ids: list[int]) -> list[int]:
    box = T["outbox"]
    return list(c.execute(select(box.c.run_id).where(box.c.id.in_(ids)).distinct().order_by(box.c.run_id)).scalars())


def reopen_for_resend(c: Connection, ids: list[int], states: tuple[str, ...]) -> list[int]:
    """Put the rows of `ids` that are in `states` back to `pending`; returns those it reopened."""
    box, runs = T["outbox"], T["runs"]
    reopened = list(c.execute(select(box.c.id).where(box.c.id.in_(ids), box.c.state.in_(states))).scalars())
    if reopened:
        c.execute(update(box).where(box.c.id.in_(reopened)).values(state="pending", claimed_by=None, lease_until=None,
                                                                   next_attempt_at=None))
        run_ids = select(box.c.run_id).where(box.c.id.in_(reopened)).distinct()
        c.execute(update(runs).where(runs.c.id.in_(run_ids)).values(settled_at=None))
    return reopened


def outbox_listing(c: Connection, session_id: str, run: int | None, state: str | None,
                   addresses: bool = False, limit: int | None = None, offset: int = 0) -> pd.DataFrame:
    """A session's outbox rows (one run, or all) with their version; addresses only when asked;
    `limit` rows from `offset` (a page of the console's outbox)."""
    box, runs, ph, pr = T["outbox"], T["runs"], T["pharmacies"], T["professionals"]
    columns = [box.c.id, runs.c.version, box.c.recipient_id, box.c.recipient_kind, box.c.state, box.c.attempts,
               box.c.sent_at, box.c.next_attempt_at, box.c.detail, box.c.message_id]
    query = select(*columns).join(runs, runs.c.id == box.c.run_id).where(runs.c.session_id == session_id)
    if addresses:
        email = func.coalesce(ph.c.email, pr.c.email).label("email")
        query = (select(*columns, email).join(runs, runs.c.id == box.c.run_id)
                 .outerjoin(ph, and_(ph.c.session_id == session_id, ph.c.finess == box.c.recipient_id,
                                     box.c.recipient_kind == "officine"))
                 .outerjoin(pr, and_(pr.c.session_id == session_id, pr.c.rpps == box.c.recipient_id,
                                     box.c.recipient_kind != "officine"))
                 .where(runs.c.session_id == session_id))
    if run is not None:
        query = query.where(box.c.run_id == run)
    if state is not None:
        query = query.where(box.c.state == state)
    query = query.order_by(runs.c.version, box.c.id)
    return read_frame(c, query if limit is None else query.limit(limit).offset(offset))


def outbox_total(c: Connection, session_id: str, state: str | None) -> int:
    box, runs = T["outbox"], T["runs"]
    query = select(func.count()).select_from(box).join(runs, runs.c.id == box.c.run_id).where(
        runs.c.session_id == session_id)
    return int(c.execute(query if state is None else query.where(box.c.state == state)).scalar_one())


def outbox_rows(c: Connection, run: int, state: str | None = None) -> pd.DataFrame:
    box = T["outbox"]
    query = select(box).where(box.c.run_id == run)
    return read_frame(c, (query.where(box.c.state == state) if state else query).order_by(box.c.id))


def officine_emails(c: Connection, finess: str, session_ids: list[str], people: list[str] | None = None) -> pd.DataFrame:
    """The emails of these sessions' runs to the officine, or (`people`) to these professionals."""
    b, r = T["outbox"], T["runs"]
    whom = and_(b.c.recipient_id == finess, b.c.recipient_kind == "officine") if people is None else \
        and_(b.c.recipient_id.in_(people or [""]), b.c.recipient_kind != "officine")
    return read_frame(c, select(b.c.run_id, b.c.message_id, b.c.state, b.c.attempts, b.c.sent_at, b.c.replaces,
                                b.c.detail, b.c.id.label("outbox_id"), b.c.recipient_id).join(r, r.c.id == b.c.run_id)
                      .where(r.c.session_id.in_(session_ids), whom)
                      .order_by(b.c.run_id, b.c.id))


# What people did (resends, reallocations, purges, the console's look-ups): written, never changed.

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


# Metrics (`vialflow metrics`): counts read at scrape time, so every worker process agrees.

def metric_emails(c: Connection) -> list[tuple]:
    """(session, run version, state, emails) for every run's outbox."""
    b, r = T["outbox"], T["runs"]
    return [tuple(row) for row in c.execute(
        select(r.c.session_id, r.c.version, b.c.state, func.count()).join(r, r.c.id == b.c.run_id)
        .group_by(r.c.session_id, r.c.version, b.c.state).order_by(r.c.session_id, r.c.version, b.c.state))]


def metric_lines(c: Connection) -> list[tuple]:
    """(session, run version, vaccine, status, reason, lines, vials requested, vials allocated)."""
    d, o, r = T["decisions"], T["orders"], T["runs"]
    keys = (r.c.session_id, r.c.version, o.c.vaccine, d.c.status, d.c.reason)
    return [tuple(row) for row in c.execute(
        select(*keys, func.count(), func.sum(d.c.requested), func.sum(d.c.allocated))
        .select_from(d).join(r, r.c.id == d.c.run_id)
        .join(o, and_(o.c.session_id == r.c.session_id, o.c.order_id == d.c.order_id))
        .group_by(*keys).order_by(*keys))]


def metric_deliveries(c: Connection) -> list[tuple]:
    """(session, run version, vaccine, status, vials): scheduled and pending vials."""
    v, r = T["deliveries"], T["runs"]
    keys = (r.c.session_id, r.c.version, v.c.vaccine, v.c.status)
    return [tuple(row) for row in c.execute(
        select(*keys, func.sum(v.c.vials)).join(r, r.c.id == v.c.run_id).group_by(*keys).order_by(*keys))]


def metric_oldest_waiting(c: Connection, settled: tuple[str, ...]) -> list[tuple]:
    """(session, when the oldest run with an email still waiting, in no `settled` state, wrote its outbox)."""
    b, r = T["outbox"], T["runs"]
    return [tuple(row) for row in c.execute(
        select(r.c.session_id, func.min(r.c.prepared_at)).join(b, b.c.run_id == r.c.id)
        .where(b.c.state.not_in(settled)).group_by(r.c.session_id).order_by(r.c.session_id))]


def metric_stamps(c: Connection) -> list:
    """Each session's latest run with its step stamps (created, allocated, scheduled, prepared,
    sending, settled) and the instant its last email went out (`last_sent_at`)."""
    r, b = T["runs"], T["outbox"]
    latest = select(r.c.session_id, func.max(r.c.version).label("version")).group_by(r.c.session_id).subquery()
    last_sent = select(func.max(b.c.sent_at)).where(b.c.run_id == r.c.id).scalar_subquery().label("last_sent_at")
    return c.execute(select(r.c.session_id, r.c.version, r.c.created_at, *[r.c[n] for n in STAMPS], r.c.settled_at,
                            last_sent)
                     .join(latest, and_(latest.c.session_id == r.c.session_id, latest.c.version == r.c.version))
                     .order_by(r.c.session_id)).all()


def metric_failures(c: Connection) -> list[tuple]:
    """(session, version, step failed, view failed) of each run where a step failed for good or a
    view (the report) could not be written."""
    r = T["runs"]
    return [(row.session_id, row.version, row.error is not None, row.view_failure is not None) for row in
            c.execute(select(r.c.session_id, r.c.version, r.c.error, r.c.view_failure)
                      .where(or_(r.c.error.is_not(None), r.c.view_failure.is_not(None)))
                      .order_by(r.c.session_id, r.c.version))]


# Purge: personal data kept no longer than the emails need it.

def session_settlement(c: Connection, session_id: str, settled: tuple[str, ...]) -> dict:
    """Whether every email of every run of the session has settled (none in a state outside
    `settled`, every run's outbox written), and the last instant it did: the newest run's
    `settled_at`, or for a run settled before that stamp existed, its last email's `sent_at`
    (else the instant its emails were handed over)."""
    r, b = T["runs"], T["outbox"]
    runs = c.execute(select(r.c.id, r.c.prepared_at, r.c.sending_at, r.c.settled_at)
                     .where(r.c.session_id == session_id).order_by(r.c.version)).all()
    waiting = c.execute(select(func.count()).select_from(b).join(r, r.c.id == b.c.run_id)
                        .where(r.c.session_id == session_id, b.c.state.not_in(settled))).scalar_one()
    last_sent = c.execute(select(func.max(b.c.sent_at)).join(r, r.c.id == b.c.run_id)
                          .where(r.c.session_id == session_id)).scalar()
    done = bool(runs) and not waiting and all(run.prepared_at is not None for run in runs)
    instants = [run.settled_at or run.sending_at or run.prepared_at for run in runs] + [last_sent]
    return {"runs": len(runs), "waiting": int(waiting), "settled": done,
            "settled_at": max((i for i in instants if i is not None), default=None)}


def blank_contacts(c: Connection, session_id: str) -> dict[str, int]:
    """Names and email addresses of the session's officines and professionals, blanked (and cut
    out of the session's and its runs' failure messages, should one have quoted them); ids,
    kinds, departments, depots and attachments kept."""
    counts = {}
    values = set()
    for name in ("pharmacies", "professionals"):
        table = T[name]
        for person, email in c.execute(select(table.c.name, table.c.email).where(table.c.session_id == session_id)):
            values |= {person, email} - {""}
    for table, where in ((T["sessions"], T["sessions"].c.id == session_id),
                         (T["runs"], T["runs"].c.session_id == session_id)):
        for key, error in c.execute(select(table.c.id, table.c.error).where(where, table.c.error.is_not(None))):
            cut = error
            for value in sorted(values, key=len, reverse=True):
                cut = cut.replace(value, "")
            if cut != error:
                c.execute(update(table).where(table.c.id == key).values(error=cut))
    for name in ("pharmacies", "professionals"):
        table = T[name]
        counts[name] = c.execute(update(table).where(table.c.session_id == session_id)
                                 .values(name="", email="")).rowcount
    return counts
# The console's pages (its accounts, sessions, throttle and search are in accounts.py).

def sessions(c: Connection) -> pd.DataFrame:
    """Every session, newest first: id, closes_at, state."""
    s = T["sessions"]
    return read_frame(c, select(s.c.id, s.c.closes_at, s.c.state).order_by(s.c.closes_at.desc(), s.c.id))


def outbox_row(c: Connection, outbox_id: int):
    """One email with its run's session and version."""
    b, r = T["outbox"], T["runs"]
    return c.execute(select(b, r.c.session_id, r.c.version).join(r, r.c.id == b.c.run_id)
                     .where(b.c.id == outbox_id)).first()
