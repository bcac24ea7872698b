"""The console's accounts: who may sign in, as what, for how long, and how often one may try.

Passwords are kept as argon2id hashes (argon2-cffi). A signed-in browser holds a random token;
the database keeps only its SHA-256, so a copy of the database opens no session. Refused
sign-ins are counted in the database (`sign_in_throttle`), so every console process behind a load
balancer counts the same ones; they slow an attacker down without ever locking the owner out.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from pipeline.adapters.db import accounts as db
from pipeline.adapters.db.actions import record_action

from . import ServiceError
from .passwords import LONGEST_PASSWORD, check_password
from .throttle import Attempt, keys_for, reserve, unknown

ROLES = ("support", "operator", "admin")
ACTING = ("operator", "admin")  # may preview and record a reallocation, resend emails
IDLE = dt.timedelta(minutes=30)        # a session unused this long is over
LONGEST = dt.timedelta(hours=10)       # and none outlives a working day
FORGOTTEN = dt.timedelta(days=1)       # a throttle key idle this long, with nothing to keep, is deleted

_hasher = PasswordHasher()
# Verified when the account is unknown, so that an unknown name takes as long as a wrong password.
_DUMMY = _hasher.hash(secrets.token_hex(16))


class AccountRefused(ServiceError):
    """A `vialflow users` command that cannot be carried out (unknown account, bad name or role)."""

    status = 400


class SignInRefused(ServiceError):
    """Wrong name or password, or a disabled account (one message for all: it tells an attacker nothing)."""

    status = 401

    def __init__(self) -> None:
        super().__init__("Identifiant ou mot de passe incorrect.")


class TooManyAttempts(ServiceError):
    """Too many refused sign-ins lately for this account from this address (or from this address, or
    for this account from addresses it never used): try again in `retry_after` seconds."""

    status = 429

    def __init__(self, retry_after: int) -> None:
        self.retry_after = retry_after
        minutes = math.ceil(retry_after / 60)
        super().__init__("Trop de tentatives de connexion refusées : réessayez dans "
                         + (f"{retry_after} secondes." if retry_after < 120 else f"{minutes} minutes."))


@dataclass(frozen=True)
class Signed:
    """A signed-in browser: the token its cookie carries, its CSRF token, and who it is."""

    token: str
    csrf_token: str
    name: str
    role: str
    expires_at: dt.datetime


def add_user(engine: Engine, name: str, role: str, password: str, now: dt.datetime, actor: str | None = None) -> int:
    if not db_name_ok(name):
        raise AccountRefused("Un nom de compte a de 1 à 64 caractères (lettres, chiffres, . _ -) et commence par "
                             "une lettre ou un chiffre.")
    if role not in ROLES:
        raise AccountRefused(f"Rôle inconnu « {role[:20]} » : support, operator ou admin.")
    check_password(password, name)
    try:
        with engine.begin() as c:
            found = db.insert_user(c, name, role, _hasher.hash(password), now)
            record_action(c, now, actor or name, "user_add", target=name, detail={"role": role})
            return found
    except IntegrityError:
        raise AccountRefused(f"Le compte {name} existe déjà.") from None


def change_password(engine: Engine, name: str, password: str, now: dt.datetime, actor: str) -> None:
    """A new password; every session of the account ends (whoever held one must sign in again)."""
    check_password(password, name)
    _change(engine, name, now, actor, "user_password", password_hash=_hasher.hash(password))


def set_disabled(engine: Engine, name: str, disabled: bool, now: dt.datetime, actor: str) -> None:
    """Disable (its sessions end at once) or enable an account."""
    _change(engine, name, now, actor, "user_disable" if disabled else "user_enable", disabled=disabled)


def unlock(engine: Engine, name: str, now: dt.datetime, actor: str) -> int:
    """Forget the refused sign-ins counted against the account, from every address."""
    with engine.begin() as c:
        if db.user_named(c, name) is None:
            raise AccountRefused(f"Aucun compte nommé {name[:64]}.")
        cleared = db.clear_throttle(c, name=name)
        record_action(c, now, actor, "user_unlock", target=name, detail={"keys": cleared})
    return cleared


def _change(engine: Engine, name: str, now: dt.datetime, actor: str, action: str, **values) -> None:
    with engine.begin() as c:
        if not db.change_user(c, name, **values):
            raise AccountRefused(f"Aucun compte nommé {name[:64]}.")
        if values.get("disabled", True) or "password_hash" in values:
            db.delete_console_sessions(c, user=name)
        record_action(c, now, actor, action, target=name)


def users(engine: Engine) -> list[dict]:
    with engine.connect() as c:
        rows = db.users(c)
    return [{"name": r.name, "role": r.role, "created_at": _utc(r.created_at).isoformat(), "disabled": bool(r.disabled)}
            for r in rows]


def sign_in(engine: Engine, name: str, password: str, address: str, now: dt.datetime) -> Signed:
    """Open a session for `name`, or refuse. The attempt is counted before the password is checked,
    under a row lock (`throttle.reserve`): of parallel attempts, no more than the free tries left
    reach the hash; the others raise TooManyAttempts at once. A right password gives its try back."""
    name, address = (name or "").strip(), (address or "")[:64]
    with engine.begin() as c:
        user = db.user_named(c, name) if db_name_ok(name) else None
        keys = keys_for(user.name if user is not None else unknown(name), address)
        rows = db.hold_throttle(c, keys)
        attempt = reserve(rows, now)
        if attempt.retry_after is not None:  # rolled back: a refused-at-once attempt is not counted
            raise TooManyAttempts(attempt.retry_after)
        for key, values in attempt.updates.items():
            db.set_throttle(c, key, **values)
    right = len(password or "") <= LONGEST_PASSWORD and _verified(
        user.password_hash if user is not None else _DUMMY, password or "")
    if not right or user is None or user.disabled:
        _refused(engine, user, address, attempt, now)
        raise SignInRefused()
    with engine.begin() as c:
        _given_back(c, attempt, now)
        db.forget_throttle(c, before=now - FORGOTTEN)
        db.delete_console_sessions(c, before=now)
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        expires = now + IDLE
        db.insert_console_session(c, _digest(token), user.id, csrf, now, expires, address)
        record_action(c, now, user.name, "sign_in", address=address)
    return Signed(token, csrf, user.name, user.role, expires)


def _refused(engine: Engine, user, address: str, attempt: Attempt, now: dt.datetime) -> None:
    """Journal rows an admin reads: the refusal, and each lock it set. The name typed is kept only
    when it is an account's: an unknown one may be a password typed in the wrong field."""
    actor = user.name if user is not None else "?"
    with engine.begin() as c:
        record_action(c, now, actor, "sign_in_refused", address=address,
                      detail={"account": "unknown" if user is None else "disabled" if user.disabled else "known"})
        for scope, seconds in attempt.locks:
            record_action(c, now, actor, "sign_in_locked", address=address, detail={"scope": scope, "seconds": seconds})


def _given_back(c, attempt: Attempt, now: dt.datetime) -> None:
    """The right password: the pair's count starts again and its address becomes known to the
    account; the address's and the account's keys get their try back."""
    for key, values in attempt.updates.items():
        if key[0] == "pair":
            db.set_throttle(c, key, failures=0, locked_until=None, known_at=now)
        else:
            db.refund_throttle(c, key, values.get("locked_until"), attempt.previous_locks.get(key))


def session(engine: Engine, token: str | None, now: dt.datetime) -> Signed | None:
    """The signed-in session of `token`, its expiry moved on; None when there is none, it is
    over (idle too long, or older than a working day), or its account was disabled."""
    if not token or len(token) > 128:
        return None
    digest = _digest(token)
    with engine.connect() as c:
        row = db.console_session(c, digest)
    if row is None or row.disabled or _utc(row.expires_at) <= now or _utc(row.created_at) + LONGEST <= now:
        return None
    expires = min(now + IDLE, _utc(row.created_at) + LONGEST)
    if now - _utc(row.seen_at) > dt.timedelta(minutes=1):  # one write a minute, not one per request
        with engine.begin() as c:
            db.touch_console_session(c, digest, now, expires)
    return Signed(token, row.csrf_token, row.name, row.role, expires)


def sign_out(engine: Engine, token: str | None, address: str, now: dt.datetime) -> None:
    signed = session(engine, token, now)
    with engine.begin() as c:
        if token:
            db.delete_console_sessions(c, digest=_digest(token))
        if signed is not None:
            record_action(c, now, signed.name, "sign_out", address=address)


def db_name_ok(name: str) -> bool:
    return bool(name) and len(name) <= 64 and name.isascii() and name[0].isalnum() and all(
        ch.isalnum() or ch in "._-" for ch in name)


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

