"""How refused sign-ins slow an attacker down without locking the owner out (OWASP ASVS V2.2).

Counted per key: `pair` (an account from one address: what a typo or a guesser at one address
meets), `address` (every account from one address: spraying names), and `account` (one account from
the addresses it has not signed in from lately: guessing from many addresses). Past a key's free
tries, each further refused try locks the key for a while that doubles, up to a ceiling; a locked
key is answered at once with the seconds left. The owner at an address they use is never met by
another address's count, and an attacker's count never reaches the owner's address.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Limit:
    free: int                 # refused tries before the first lock
    window: dt.timedelta      # a key with no refusal (nor lock) for this long starts again from zero
    first_lock: dt.timedelta  # the first lock, doubled at each further refusal
    longest_lock: dt.timedelta


LIMITS = {"pair": Limit(5, dt.timedelta(minutes=15), dt.timedelta(seconds=30), dt.timedelta(minutes=15)),
          "address": Limit(30, dt.timedelta(minutes=15), dt.timedelta(minutes=1), dt.timedelta(minutes=15)),
          "account": Limit(100, dt.timedelta(hours=1), dt.timedelta(minutes=1), dt.timedelta(minutes=15))}
# One-time sign-in links (the self-service space): every request counts, whether or not its FINESS
# is on a register, so that a hold tells nothing of which officines exist.
LINK_LIMITS = {"link_adr": Limit(10, dt.timedelta(minutes=15), dt.timedelta(minutes=15), dt.timedelta(hours=1)),
               "link_fin": Limit(3, dt.timedelta(minutes=15), dt.timedelta(minutes=15), dt.timedelta(hours=1))}
# Pro Santé Connect sign-ins started (the self-service space): each start stores a row (its state,
# nonce and PKCE verifier) before anyone is known, so every start counts, per address.
START_LIMITS = {"psc_adr": Limit(20, dt.timedelta(minutes=10), dt.timedelta(minutes=1), dt.timedelta(minutes=15))}
KNOWN = dt.timedelta(days=90)  # an address the account signed in from this recently is the owner's

Key = tuple[str, str, str]  # (scope, name, address)


@dataclass
class Attempt:
    """One sign-in attempt's count: refused at once (`retry_after` seconds), or counted as refused
    until its password proves right (`updates` to store, `locks` it sets if it proves wrong)."""

    retry_after: int | None = None
    updates: dict[Key, dict] = field(default_factory=dict)
    previous_locks: dict[Key, dt.datetime | None] = field(default_factory=dict)
    locks: list[tuple[str, int]] = field(default_factory=list)


def keys_for(name: str, address: str) -> list[Key]:
    """The keys an attempt on `name` (an account's name, or `unknown(typed)`) from `address` is counted on."""
    return [("pair", name, address), ("address", "", address), ("account", name, "")]


def unknown(typed: str) -> str:
    """The key of a name that is no account's: counted like an account's, so that no answer (a hold
    here, a wrong password there) tells which names exist, but stored as a digest, never as typed
    (it may be a password typed in the wrong field). `?` starts no account's name."""
    return "?" + hashlib.sha256(b"vialflow sign-in " + typed.encode("utf-8", "replace")).hexdigest()[:24]


def link_keys(finess: str, address: str) -> list[Key]:
    """The keys a request for a one-time link is counted on: its address, and the officine asked for."""
    return [("link_adr", "", address), ("link_fin", finess, "")]


def start_keys(address: str) -> list[Key]:
    """The key a Pro Santé Connect sign-in started from `address` is counted on."""
    return [("psc_adr", "", address)]


def reserve(rows: dict, now: dt.datetime, limits: dict[str, Limit] = LIMITS) -> Attempt:
    """Count an attempt on the keys' `rows` (failures, last_at, locked_until, known_at), or refuse it."""
    pair = next((row for key, row in rows.items() if key[0] == "pair"), None)
    owner = pair is not None and pair.known_at is not None and now - _utc(pair.known_at) <= KNOWN
    applying = {key: row for key, row in sorted(rows.items()) if not (key[0] == "account" and owner)}
    waits = [_utc(row.locked_until) - now for row in applying.values()
             if row.locked_until is not None and _utc(row.locked_until) > now]
    if waits:
        return Attempt(retry_after=max(1, math.ceil(max(waits).total_seconds())))
    attempt = Attempt()
    for key, row in applying.items():
        limit = limits[key[0]]
        quiet_since = max(_utc(row.last_at or now), _utc(row.locked_until or row.last_at or now))
        failures = (0 if now - quiet_since > limit.window else row.failures) + 1
        attempt.updates[key] = {"failures": failures, "last_at": now}
        attempt.previous_locks[key] = row.locked_until
        if failures >= limit.free:
            lock = min(limit.first_lock * 2 ** min(failures - limit.free, 16), limit.longest_lock)
            attempt.updates[key]["locked_until"] = now + lock
            attempt.locks.append((key[0], int(lock.total_seconds())))
    return attempt


def _utc(value: dt.datetime) -> dt.datetime:
    """SQLite gives instants back without their zone; every stored instant is UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.timezone.utc)
