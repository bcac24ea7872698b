"""The console's accounts: who may sign in, as what, for how long, and how often one may try.

Passwords are kept as argon2id hashes (argon2-cffi). A signed-in browser holds a random token;
the database keeps only its SHA-256, so a copy of the database opens no session. Refused
sign-ins are rows, so every console process behind a load balancer counts the same ones.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from pipeline.adapters.db import queries

from . import ServiceError

ROLES = ("support", "operator", "admin")
ACTING = ("operator", "admin")  # may preview and record a reallocation, resend emails
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
MIN_PASSWORD = 12
IDLE = dt.timedelta(minutes=30)        # a session unused this long is over
LONGEST = dt.timedelta(hours=10)       # and none outlives a working day
ATTEMPTS, WINDOW = 5, dt.timedelta(minutes=15)  # refused sign-ins, per account and per address

_hasher = PasswordHasher()
# Verified when the account is unknown, so that an unknown name takes as long as a wrong password.
_DUMMY = _hasher.hash(secrets.token_hex(16))


class SignInRefused(ServiceError):
    """Wrong name or password, or a disabled account (one message for all: it tells an attacker nothing)."""


class TooManyAttempts(ServiceError):
    """Too many refused sign-ins for this account or from this address lately."""


@dataclass(frozen=True)
class Signed:
    """A signed-in browser: the token its cookie carries, its CSRF token, and who it is."""

    token: str
    csrf_token: str
    name: str
    role: str
    expires_at: dt.datetime


def add_user(engine: Engine, name: str, role: str, password: str, now: dt.datetime) -> int:
    if not NAME.fullmatch(name or ""):
        raise ServiceError("a user name is 1 to 64 letters, digits, dots, dashes or underscores, "
                           "starting with a letter or a digit")
    if role not in ROLES:
        raise ServiceError(f"unknown role {role!r}: one of {', '.join(ROLES)}")
    if len(password) < MIN_PASSWORD:
        raise ServiceError(f"the password must have at least {MIN_PASSWORD} characters")
    try:
        with engine.begin() as c:
            return queries.insert_user(c, name, role, _hasher.hash(password), now)
    except IntegrityError:
        raise ServiceError(f"a user named {name} already exists") from None


def users(engine: Engine) -> list[dict]:
    with engine.connect() as c:
        frame = queries.users(c)
    return [{"name": r.name, "role": r.role, "created_at": r.created_at.isoformat(), "disabled": bool(r.disabled)}
            for r in frame.itertuples()]


def sign_in(engine: Engine, name: str, password: str, address: str, now: dt.datetime) -> Signed:
    """Open a session for `name`, or refuse: TooManyAttempts before even looking at the password
    when the account or the address has had too many refusals lately, else SignInRefused."""
    name = (name or "").strip()[:64]
    with engine.begin() as c:
        by_name, by_address = queries.sign_in_failures(c, name, address, now - WINDOW)
        if by_name >= ATTEMPTS or by_address >= ATTEMPTS:
            raise TooManyAttempts("too many refused sign-ins")
        user = queries.user_named(c, name) if name else None
        refused = not _verified(user.password_hash if user is not None else _DUMMY, password or "") \
            or user is None or user.disabled
        if refused:  # committed with this transaction: raising inside it would roll the count back
            queries.record_sign_in_failure(c, now, name, address)
    if refused:
        raise SignInRefused("wrong user name or password")
    with engine.begin() as c:
        queries.forget_sign_in_failures(c, name=name)
        queries.forget_sign_in_failures(c, before=now - WINDOW)
        queries.delete_console_sessions(c, before=now)
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        expires = now + IDLE
        queries.insert_console_session(c, _digest(token), user.id, csrf, now, expires, address)
        queries.record_action(c, now, user.name, "sign_in", address=address)
    return Signed(token, csrf, user.name, user.role, expires)


def session(engine: Engine, token: str | None, now: dt.datetime) -> Signed | None:
    """The signed-in session of `token`, its expiry moved on; None when there is none, it is
    over (idle too long, or older than a working day), or its account was disabled."""
    if not token:
        return None
    digest = _digest(token)
    with engine.connect() as c:
        row = queries.console_session(c, digest)
    if row is None or row.disabled or _utc(row.expires_at) <= now or _utc(row.created_at) + LONGEST <= now:
        return None
    expires = min(now + IDLE, _utc(row.created_at) + LONGEST)
    if now - _utc(row.seen_at) > dt.timedelta(minutes=1):  # one write a minute, not one per request
        with engine.begin() as c:
            queries.touch_console_session(c, digest, now, expires)
    return Signed(token, row.csrf_token, row.name, row.role, expires)


def sign_out(engine: Engine, token: str | None, address: str, now: dt.datetime) -> None:
    signed = session(engine, token, now)
    with engine.begin() as c:
        if token:
            queries.delete_console_sessions(c, digest=_digest(token))
        if signed is not None:
            queries.record_action(c, now, signed.name, "sign_out", address=address)


def _verified(stored: str, password: str) -> bool:
    try:
        return _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _utc(value: dt.datetime) -> dt.datetime:
    """SQLite gives instants back without their zone; every stored instant is UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.timezone.utc)
