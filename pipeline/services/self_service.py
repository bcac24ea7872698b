"""The self-service space: an officine, a pharmacist or a professional signs in (a one-time link, or
Pro Santé Connect) and reads their own deliveries, lines and emails, and nothing else.

Sessions are the console's kind (a random token in the cookie, its SHA-256 in the database, idle
30 minutes, a working day at most), kept in their own table: a self-service session opens no
operator page. One-time links are stored as digests, valid 15 minutes, used once, and throttled per
address and per officine, whether or not the FINESS is on a register. A Pro Santé Connect sign-in
stores a row before anyone is known: its starts are throttled per address and bounded in number.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import secrets
from dataclasses import dataclass

from sqlalchemy import Engine

from pipeline.adapters.db import accounts as throttle_db
from pipeline.adapters.db import self_service as db
from pipeline.adapters.db.actions import record_action
from pipeline.domain.pro_sante_connect import Identity
from pipeline.domain.rules import NAMED_KINDS
from pipeline.domain.vocabulary import Action, Role

from .accounts import IDLE, LONGEST
from .refusals import LinkRefused, LinksHeld, NoActivityHere, SignInFailed, StartsFull, StartsHeld
from .throttle import LINK_LIMITS, START_LIMITS, link_keys, reserve, start_keys

LINK_LIFE = dt.timedelta(minutes=15)
START_LIFE = dt.timedelta(minutes=10)  # an OpenID Connect sign-in not back by then is forgotten
# Sign-ins under way at once, from every address: a few kilobytes each, and more than the pharmacists
# of every officine of France starting within START_LIFE of each other.
PENDING_MOST = 10_000
SELF_ROLES = (Role.OFFICINE.value, Role.PHARMACIEN.value, Role.PROFESSIONNEL.value)


@dataclass(frozen=True)
class Visitor:
    """A signed-in browser of the self-service space: what it may read (`finesses`, `rpps`) and
    the name the journal gives it (`name`: the officine's FINESS, or a digest of the RPPS)."""

    token: str
    csrf_token: str
    name: str
    role: str
    expires_at: dt.datetime
    finesses: tuple[str, ...] = ()
    rpps: str | None = None

    def may_read(self, finess: str) -> bool:
        return self.role in (Role.OFFICINE, Role.PHARMACIEN) and finess in self.finesses


def session(engine: Engine, token: str | None, now: dt.datetime) -> Visitor | None:
    """The self-service session of `token`, its expiry moved on; None when there is none or it is over."""
    if not token or len(token) > 128:
        return None
    digest = _digest(token)
    with engine.connect() as c:
        row = db.session_row(c, digest)
    if row is None or _utc(row.expires_at) <= now or _utc(row.created_at) + LONGEST <= now:
        return None
    expires = min(now + IDLE, _utc(row.created_at) + LONGEST)
    if now - _utc(row.seen_at) > dt.timedelta(minutes=1):
        with engine.begin() as c:
            db.touch_session(c, digest, now, expires)
    return Visitor(token, row.csrf_token, row.actor, row.role, expires, tuple(row.finesses), row.rpps)


def sign_out(engine: Engine, token: str | None, address: str, now: dt.datetime) -> None:
    visitor = session(engine, token, now)
    with engine.begin() as c:
        if token:
            db.delete_sessions(c, digest=_digest(token))
        if visitor is not None:
            record_action(c, now, visitor.name, Action.SIGN_OUT, address=address)


def _open(c, role: str, actor: str, finesses: list[str], rpps: str | None, address: str, now: dt.datetime,
          how: str) -> Visitor:
    db.delete_sessions(c, before=now)
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    expires = now + IDLE
    db.insert_session(c, _digest(token), role, actor, finesses, rpps, csrf, now, expires, address)
    record_action(c, now, actor, Action.SIGN_IN, address=address, detail={"by": how, "role": role})
    return Visitor(token, csrf, actor, role, expires, tuple(finesses), rpps)


# The one-time link.

@dataclass(frozen=True)
class Link:
    """A link to send: the officine's address on the register, and the token of the link."""

    finess: str
    address: str
    token: str


def request_link(engine: Engine, finess: str, address: str, now: dt.datetime) -> Link | None:
    """Count the request (per address, per officine) and, for an officine on a register, record a
    link and return what to send; None for an unknown FINESS. Held requests raise LinksHeld, the
    same for a known and an unknown FINESS. The journal names the FINESS asked for, never the token."""
    address = (address or "")[:64]
    with engine.begin() as c:
        rows = throttle_db.hold_throttle(c, link_keys(finess, address))
        attempt = reserve(rows, now, LINK_LIMITS)
        if attempt.retry_after is not None:
            raise LinksHeld(attempt.retry_after)
        for key, values in attempt.updates.items():
            throttle_db.set_throttle(c, key, **values)
        db.forget_links(c, before=now)
        to = db.officine_address(c, finess)
        record_action(c, now, f"officine:{finess}", Action.LINK_REQUEST, address=address, target=finess)
        if to is None:
            return None
        token = secrets.token_urlsafe(32)
        db.insert_link(c, _digest(token), finess, now, now + LINK_LIFE)
    return Link(finess, to, token)


def redeem_link(engine: Engine, token: str, address: str, now: dt.datetime) -> Visitor:
    """Sign in as the link's officine: once, before it expires; else LinkRefused."""
    address = (address or "")[:64]
    with engine.begin() as c:
        finess = db.use_link(c, _digest(token), now) if token and len(token) <= 128 else None
        if finess is None:
            record_action(c, now, "?", Action.LINK_REFUSED, address=address)
        else:
            return _open(c, Role.OFFICINE, f"officine:{finess}", [finess], None, address, now, "lien")
    raise LinkRefused()


# Pro Santé Connect.

@dataclass(frozen=True)
class Start:
    """An OpenID Connect sign-in under way: the browser's token, and what its return must match."""

    browser: str
    state: str
    nonce: str
    code_verifier: str


def start_sign_in(engine: Engine, address: str, now: dt.datetime) -> Start:
    """Record a sign-in under way. Counted per address (StartsHeld past START_LIMITS); the expired
    ones are forgotten first, and with PENDING_MOST still under way the start is refused (StartsFull)
    until the oldest of them expires."""
    address = (address or "")[:64]
    start = Start(secrets.token_urlsafe(32), secrets.token_urlsafe(32), secrets.token_urlsafe(32),
                  secrets.token_urlsafe(64))
    with engine.begin() as c:
        attempt = reserve(throttle_db.hold_throttle(c, start_keys(address)), now, START_LIMITS)
        if attempt.retry_after is not None:
            raise StartsHeld(attempt.retry_after)
        for key, values in attempt.updates.items():
            throttle_db.set_throttle(c, key, **values)
        db.forget_starts(c, before=now - START_LIFE)
        pending, oldest = db.pending_starts(c)
        if pending >= PENDING_MOST:
            raise StartsFull(max(1, math.ceil((_utc(oldest) + START_LIFE - now).total_seconds())))
        db.insert_start(c, _digest(start.browser), start.state, start.nonce, start.code_verifier, now)
    return start


def returned(engine: Engine, browser: str | None, state: str | None, address: str, now: dt.datetime) -> Start:
    """The sign-in this browser started, if `state` is its own and it is recent; taken once. Else
    SignInFailed (journalled)."""
    row = None
    if browser and len(browser) <= 128:
        with engine.begin() as c:
            row = db.take_start(c, _digest(browser))
    if row is None or _utc(row.created_at) + START_LIFE <= now:
        raise failed(engine, "no_start", address, now)
    if not state or not secrets.compare_digest(state.encode(), row.state.encode()):
        raise failed(engine, "state", address, now)
    return Start(browser, row.state, row.nonce, row.code_verifier)


def failed(engine: Engine, why: str, address: str, now: dt.datetime) -> SignInFailed:
    """Journal a refused Pro Santé Connect sign-in; the refusal to raise."""
    with engine.begin() as c:
        record_action(c, now, "?", Action.SIGN_IN_REFUSED, address=(address or "")[:64],
                      detail={"by": "psc", "why": why})
    return SignInFailed(why)


def sign_in_professional(engine: Engine, who: Identity, address: str, now: dt.datetime) -> Visitor:
    """Open the session of a professional proven by Pro Santé Connect: a pharmacist of officines on the
    registers reads those officines; a doctor, occupational doctor or midwife named on a register
    reads their own lines. Anyone else: NoActivityHere (journalled)."""
    address = (address or "")[:64]
    with engine.begin() as c:
        officines = db.officines_known(c, list(who.pharmacy_sites))
        actor = f"rpps:{_pseudonym(who.rpps)}" if who.rpps else "?"
        if officines:
            return _open(c, Role.PHARMACIEN, actor, officines, who.rpps, address, now, "psc")
        if who.rpps and db.professional_sessions(c, who.rpps, NAMED_KINDS):
            return _open(c, Role.PROFESSIONNEL, actor, [], who.rpps, address, now, "psc")
    failed(engine, "no_activity", address, now)
    raise NoActivityHere()


def _pseudonym(rpps: str) -> str:
    """The journal's name for a professional: a digest of the RPPS, never the number itself."""
    return hashlib.sha256(b"vialflow professional " + rpps.encode()).hexdigest()[:16]


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _utc(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.timezone.utc)
