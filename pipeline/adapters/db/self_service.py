"""The self-service space's queries: its signed-in sessions, one-time sign-in links, OpenID Connect
sign-ins under way, and who in the registers may read what.

Functions take an open connection (the services own the transactions); every value is bound."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Connection, delete, func, select, update

from .tables import Base

T = Base.metadata.tables


# Who is on the registers.

def officines_known(c: Connection, finesses: list[str]) -> list[str]:
    """Those of `finesses` that some session's register of officines holds, sorted."""
    if not finesses:
        return []
    p = T["pharmacies"]
    return list(c.execute(select(p.c.finess).where(p.c.finess.in_(finesses)).distinct().order_by(p.c.finess))
                .scalars())


def officine_address(c: Connection, finess: str) -> str | None:
    """The officine's address on the register of its newest session that holds it (None: unknown)."""
    p, s = T["pharmacies"], T["sessions"]
    return c.execute(select(p.c.email).join(s, s.c.id == p.c.session_id).where(p.c.finess == finess)
                     .order_by(s.c.closes_at.desc(), s.c.id.desc()).limit(1)).scalar()


def professional_sessions(c: Connection, rpps: str, kinds: tuple[str, ...]) -> list[str]:
    """The sessions whose register of professionals holds `rpps` as one of `kinds`, sorted."""
    r = T["professionals"]
    return list(c.execute(select(r.c.session_id).where(r.c.rpps == rpps, r.c.kind.in_(kinds))
                          .order_by(r.c.session_id)).scalars())


# Signed-in sessions.

def insert_session(c: Connection, digest: str, role: str, actor: str, finesses: list[str], rpps: str | None,
                   csrf_token: str, now: dt.datetime, expires_at: dt.datetime, address: str | None) -> None:
    c.execute(T["self_sessions"].insert().values(id=digest, role=role, actor=actor, finesses=finesses, rpps=rpps,
                                                 csrf_token=csrf_token, created_at=now, seen_at=now,
                                                 expires_at=expires_at, address=address))


def session_row(c: Connection, digest: str):
    s = T["self_sessions"]
    return c.execute(select(s).where(s.c.id == digest)).first()


def touch_session(c: Connection, digest: str, now: dt.datetime, expires_at: dt.datetime) -> None:
    s = T["self_sessions"]
    c.execute(update(s).where(s.c.id == digest).values(seen_at=now, expires_at=expires_at))


def delete_sessions(c: Connection, digest: str | None = None, before: dt.datetime | None = None) -> None:
    s = T["self_sessions"]
    c.execute(delete(s).where(s.c.id == digest if digest is not None else s.c.expires_at < before))


# One-time sign-in links.

def insert_link(c: Connection, digest: str, finess: str, now: dt.datetime, expires_at: dt.datetime) -> None:
    c.execute(T["sign_in_links"].insert().values(id=digest, finess=finess, created_at=now, expires_at=expires_at))


def use_link(c: Connection, digest: str, now: dt.datetime) -> str | None:
    """Mark the link used, if it is unused and not expired: its FINESS, else None. One UPDATE, so
    that of two browsers opening the same link at once, one only gets its FINESS."""
    links = T["sign_in_links"]
    where = (links.c.id == digest, links.c.used_at.is_(None), links.c.expires_at > now)
    if c.execute(update(links).where(*where).values(used_at=now)).rowcount != 1:
        return None
    return c.execute(select(links.c.finess).where(links.c.id == digest)).scalar()


def forget_links(c: Connection, before: dt.datetime) -> None:
    links = T["sign_in_links"]
    c.execute(delete(links).where(links.c.expires_at < before))


# OpenID Connect sign-ins under way.

def insert_start(c: Connection, digest: str, state: str, nonce: str, code_verifier: str, now: dt.datetime) -> None:
    c.execute(T["oidc_starts"].insert().values(id=digest, state=state, nonce=nonce, code_verifier=code_verifier,
                                               created_at=now))


def take_start(c: Connection, digest: str):
    """The sign-in under way of this browser, deleted as it is read: a return is answered once."""
    starts = T["oidc_starts"]
    row = c.execute(select(starts).where(starts.c.id == digest)).first()
    if row is not None:
        c.execute(delete(starts).where(starts.c.id == digest))
    return row


def forget_starts(c: Connection, before: dt.datetime) -> None:
    starts = T["oidc_starts"]
    c.execute(delete(starts).where(starts.c.created_at < before))


def pending_starts(c: Connection) -> tuple[int, dt.datetime | None]:
    """How many sign-ins are under way, and when the oldest of them started."""
    starts = T["oidc_starts"]
    return tuple(c.execute(select(func.count(), func.min(starts.c.created_at)).select_from(starts)).one())
