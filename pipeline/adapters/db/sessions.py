"""A session and its inputs as loaded: the session row and its hold, its registers, orders and rejections,
and what support reads of an officine in them. Functions take an open connection; services own transactions."""

from __future__ import annotations

import datetime as dt

import pandas as pd
from sqlalchemy import Connection, and_, select, union, update

from pipeline.domain.rules import Session
from pipeline.domain.vocabulary import SessionState

from .frames import among, insert_frame, read_copy, read_frame
from .tables import Base

T = Base.metadata.tables
REGISTERS = {"pharmacies": ["finess", "name", "email", "department", "depot_id"],
             "professionals": ["rpps", "kind", "name", "email", "finess"],
             "depots": ["depot_id", "wholesaler", "name", "capacity_vials", "weekdays"],
             "depot_days": ["depot_id", "date", "capacity_vials"]}
ORDER_COLUMNS = ["order_id", "line", "submitted_at", "finess", "effector", "rpps", "vaccine", "injection", "vials"]


def session_hash(c: Connection, session_id: str) -> str | None:
    return c.execute(select(T["sessions"].c.input_hash).where(T["sessions"].c.id == session_id)).scalar()


def insert_session(c: Connection, scenario, digest: str, now: dt.datetime, rules: dict) -> None:
    """The session row, its registers, orders and rejections, as loaded."""
    session = scenario.session
    c.execute(T["sessions"].insert().values(
        id=session.id, rules=rules, input_hash=digest, closes_at=session.closes,
        confirmation_at=session.confirms, state=SessionState.OPEN, loaded_at=now))
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
    c.execute(update(sessions).where(sessions.c.id == session_id).values(state=SessionState.CLOSED, closed_at=now))


def sessions_due(c: Connection, now: dt.datetime) -> list[str]:
    sessions = T["sessions"]
    return list(c.execute(select(sessions.c.id).where(sessions.c.state == SessionState.OPEN,
                                                      sessions.c.closes_at <= now.astimezone(dt.timezone.utc))
                          .order_by(sessions.c.closes_at, sessions.c.id)).scalars())


def registers(c: Connection, session_id: str, name: str) -> pd.DataFrame:
    table = T[name]
    frame = read_copy(c, select(*[table.c[col] for col in REGISTERS[name]])
                      .where(table.c.session_id == session_id).order_by(*table.primary_key.columns))
    return frame if len(frame) else pd.DataFrame(columns=REGISTERS[name])


def session_orders(c: Connection, session_id: str) -> pd.DataFrame:
    orders = T["orders"]
    frame = read_copy(c, select(*[orders.c[col] for col in ORDER_COLUMNS]).where(orders.c.session_id == session_id))
    frame["submitted_at"] = pd.to_datetime(frame["submitted_at"], utc=True)
    return frame


def known_orders(c: Connection, session_id: str, order_ids: list[str]) -> set[str]:
    orders = T["orders"]
    return set(c.execute(select(orders.c.order_id).where(orders.c.session_id == session_id,
                                                         among(c, orders.c.order_id, order_ids))).scalars())


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
        table.c.session_id == session_id, among(c, key, ids)))
    return {found: {"id": found, "name": name, "email": email}
            for found, name, email in zip(frame["id"].tolist(), frame["name"].tolist(), frame["email"].tolist())}


def session_titles(c: Connection, session_ids: list[str]) -> dict[str, str]:
    s = T["sessions"]
    return {k: (rules or {}).get("title", "")
            for k, rules in c.execute(select(s.c.id, s.c.rules).where(s.c.id.in_(session_ids))).all()}


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


def officine(c: Connection, finess: str, session_ids: list[str]) -> pd.DataFrame:
    """The officine in each session's register, with its depot's name and wholesaler."""
    p, dp = T["pharmacies"], T["depots"]
    return read_frame(c, select(p.c.session_id, p.c.finess, p.c.name, p.c.email, p.c.department, p.c.depot_id,
                                dp.c.name.label("depot_name"), dp.c.wholesaler)
                      .outerjoin(dp, and_(dp.c.session_id == p.c.session_id, dp.c.depot_id == p.c.depot_id))
                      .where(p.c.session_id.in_(session_ids), p.c.finess == finess))


def every_session(c: Connection) -> pd.DataFrame:
    """Every session, newest first: id, closes_at, state."""
    s = T["sessions"]
    return read_frame(c, select(s.c.id, s.c.closes_at, s.c.state).order_by(s.c.closes_at.desc(), s.c.id))
