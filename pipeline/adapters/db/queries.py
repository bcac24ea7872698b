"""The console's accounts, signed-in sessions and refused sign-ins, and what support searches and lists."""

from __future__ import annotations

import datetime as dt

import pandas as pd
from sqlalchemy import Connection, func, select, update

from .actions import record_action  # noqa: F401 - the accounts service records sign-ins through this module
from .frames import read_frame
from .tables import Base

T = Base.metadata.tables


# The console: accounts, signed-in sessions, refused sign-ins, and what support searches.

def insert_user(c: Connection, name: str, role: str, password_hash: str, now: dt.datetime) -> int:
    return c.execute(T["users"].insert().values(name=name, role=role, password_hash=password_hash, created_at=now,
                                                disabled=False)).inserted_primary_key[0]


def user_named(c: Connection, name: str):
    return c.execute(select(T["users"]).where(T["users"].c.name == name)).first()


def users(c: Connection) -> pd.DataFrame:
    u = T["users"]
    return read_frame(c, select(u.c.id, u.c.name, u.c.role, u.c.created_at, u.c.disabled).order_by(u.c.name))


def insert_console_session(c: Connection, digest: str, user_id: int, csrf_token: str, now: dt.datetime,
                           expires_at: dt.datetime, address: str | None) -> None:
    c.execute(T["console_sessions"].insert().values(id=digest, user_id=user_id, csrf_token=csrf_token, created_at=now,
                                                    seen_at=now, expires_at=expires_at, address=address))


def console_session(c: Connection, digest: str):
    """The signed-in session with its account's name, role and state."""
    s, u = T["console_sessions"], T["users"]
    return c.execute(select(s, u.c.name, u.c.role, u.c.disabled).join(u, u.c.id == s.c.user_id)
                     .where(s.c.id == digest)).first()


def touch_console_session(c: Connection, digest: str, now: dt.datetime, expires_at: dt.datetime) -> None:
    s = T["console_sessions"]
    c.execute(update(s).where(s.c.id == digest).values(seen_at=now, expires_at=expires_at))


def delete_console_sessions(c: Connection, digest: str | None = None, before: dt.datetime | None = None) -> None:
    """The session `digest` (sign-out), or every session expired `before`."""
    s = T["console_sessions"]
    c.execute(s.delete().where(s.c.id == digest if digest is not None else s.c.expires_at < before))


def sign_in_failures(c: Connection, name: str, address: str, since: dt.datetime) -> tuple[int, int]:
    """Refused sign-ins since `since`: for the account `name`, and from `address`."""
    f = T["sign_in_failures"]
    count = lambda where: c.execute(select(func.count()).where(where, f.c.at >= since)).scalar()  # noqa: E731
    return int(count(f.c.name == name)), int(count(f.c.address == address))


def record_sign_in_failure(c: Connection, now: dt.datetime, name: str, address: str) -> None:
    c.execute(T["sign_in_failures"].insert().values(at=now, name=name[:64], address=address[:64]))


def forget_sign_in_failures(c: Connection, name: str | None = None, before: dt.datetime | None = None) -> None:
    """The account's refused sign-ins (after a good one), or every one older than `before`."""
    f = T["sign_in_failures"]
    c.execute(f.delete().where(f.c.name == name if name is not None else f.c.at < before))


def officines_named(c: Connection, text: str, limit: int) -> pd.DataFrame:
    """Officines whose name holds `text` (any case), in any session: finess, name, department, session_id."""
    p = T["pharmacies"]
    pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    return read_frame(c, select(p.c.finess, p.c.name, p.c.department, p.c.session_id)
                      .where(p.c.name.ilike(pattern, escape="\\")).order_by(p.c.name, p.c.finess, p.c.session_id)
                      .limit(limit))


def sessions(c: Connection) -> pd.DataFrame:
    """Every session, newest first: id, closes_at, state."""
    s = T["sessions"]
    return read_frame(c, select(s.c.id, s.c.closes_at, s.c.state).order_by(s.c.closes_at.desc(), s.c.id))


def outbox_row(c: Connection, outbox_id: int):
    """One email with its run's session and version."""
    b, r = T["outbox"], T["runs"]
    return c.execute(select(b, r.c.session_id, r.c.version).join(r, r.c.id == b.c.run_id)
                     .where(b.c.id == outbox_id)).first()
