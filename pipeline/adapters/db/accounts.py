"""The console's queries: accounts, signed-in sessions, the sign-in throttle, and what support searches.

Functions take an open connection (the services own the transactions); every value is a bound
parameter, so a NUL byte or a long search is a value like any other, never SQL text.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Connection, and_, case, delete, or_, select, update

from .tables import Base

T = Base.metadata.tables


# Accounts.

def insert_user(c: Connection, name: str, role: str, password_hash: str, now: dt.datetime) -> int:
    return c.execute(T["users"].insert().values(name=name, role=role, password_hash=password_hash, created_at=now,
                                                disabled=False)).inserted_primary_key[0]


def user_named(c: Connection, name: str):
    return c.execute(select(T["users"]).where(T["users"].c.name == name)).first()


def users(c: Connection) -> list:
    u = T["users"]
    return c.execute(select(u.c.id, u.c.name, u.c.role, u.c.created_at, u.c.disabled).order_by(u.c.name)).all()


def change_user(c: Connection, name: str, **values) -> bool:
    """Set `disabled` or `password_hash` of the account `name`; False when there is none."""
    u = T["users"]
    return c.execute(update(u).where(u.c.name == name).values(**values)).rowcount == 1


# Signed-in sessions.

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


def delete_console_sessions(c: Connection, digest: str | None = None, before: dt.datetime | None = None,
                            user: str | None = None) -> None:
    """The session `digest` (sign-out), every session of the account `user` (disabled, new password),
    or every session expired `before`."""
    s, u = T["console_sessions"], T["users"]
    if digest is not None:
        where = s.c.id == digest
    elif user is not None:
        where = s.c.user_id.in_(select(u.c.id).where(u.c.name == user))
    else:
        where = s.c.expires_at < before
    c.execute(delete(s).where(where))


# The sign-in throttle: one row per key (scope, name, address), held with a row lock while an
# attempt is counted, so that parallel attempts are counted one after the other.

def hold_throttle(c: Connection, keys: list[tuple[str, str, str]]) -> dict[tuple[str, str, str], object]:
    """The rows of `keys`, created when missing and locked until the transaction ends.

    The insert comes first: on SQLite it takes the database's write lock at once (a read first
    would hold a snapshot that a parallel writer makes stale); on PostgreSQL `FOR UPDATE` then
    locks the rows, in key order so that two attempts never wait on each other in a circle."""
    table = T["sign_in_throttle"]
    insert = _insert(c, table)
    for scope, name, address in keys:
        c.execute(insert.values(scope=scope, name=name, address=address, failures=0).on_conflict_do_nothing())
    found = c.execute(select(table).where(or_(*(and_(table.c.scope == s, table.c.name == n, table.c.address == a)
                                                for s, n, a in keys)))
                      .order_by(table.c.scope, table.c.name, table.c.address).with_for_update()).all()
    return {(row.scope, row.name, row.address): row for row in found}


def set_throttle(c: Connection, key: tuple[str, str, str], **values) -> None:
    table = T["sign_in_throttle"]
    scope, name, address = key
    c.execute(update(table).where(table.c.scope == scope, table.c.name == name, table.c.address == address)
              .values(**values))


def refund_throttle(c: Connection, key: tuple[str, str, str], locked_by_us, previous_lock) -> None:
    """Give back one counted try (the attempt was right), and the lock it set if it set one."""
    table = T["sign_in_throttle"]
    scope, name, address = key
    c.execute(update(table).where(table.c.scope == scope, table.c.name == name, table.c.address == address)
              .values(failures=case((table.c.failures > 0, table.c.failures - 1), else_=0),
                      locked_until=case((table.c.locked_until == locked_by_us, previous_lock),
                                        else_=table.c.locked_until) if locked_by_us is not None
                      else table.c.locked_until))


def clear_throttle(c: Connection, name: str | None = None, address: str | None = None) -> int:
    """`vialflow users unlock`: forget the counts of the account `name` (every address), or of `address`."""
    table = T["sign_in_throttle"]
    where = table.c.name == name if name is not None else table.c.address == address
    return c.execute(update(table).where(where).values(failures=0, locked_until=None)).rowcount


def forget_throttle(c: Connection, before: dt.datetime) -> None:
    """Keys idle since `before` that say nothing worth keeping (no lock, no address known to its account)."""
    table = T["sign_in_throttle"]
    c.execute(delete(table).where(table.c.last_at < before, table.c.known_at.is_(None),
                                  or_(table.c.locked_until.is_(None), table.c.locked_until < before)))


def _insert(c: Connection, table):
    if c.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table)


# What support searches.

def officines_named(c: Connection, text: str, limit: int) -> list:
    """Officines whose name holds `text` (any case), in any session: finess, name, department, session_id."""
    p = T["pharmacies"]
    pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    return c.execute(select(p.c.finess, p.c.name, p.c.department, p.c.session_id)
                     .where(p.c.name.ilike(pattern, escape="\\"))
                     .order_by(p.c.name, p.c.finess, p.c.session_id).limit(limit)).all()
