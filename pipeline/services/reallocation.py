"""Reallocation by operators (R10, R11): a changes file becomes a new run version of a closed session.

The request is checked against the stored session before anything is written; the new run keeps
the changes of every earlier version plus this one, and a hash of them: the same request twice
makes one version.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json

from sqlalchemy import Connection, Engine, select
from sqlalchemy.exc import IntegrityError

from pipeline.domain.changes import Changes, merged
from pipeline.services.steps import ServiceError, T, delivered, registers, session_rules


def request_reallocation(engine: Engine, session_id: str, changes: Changes, operator: str, reason: str,
                         now: dt.datetime) -> tuple[int, bool]:
    """Record the request as the session's next run version. Returns (run id, created); an
    identical request returns the version it made before. Nothing is written when it is refused."""
    if not operator.strip():
        raise ServiceError("an operator name is required (--operator)")
    if not reason.strip():
        raise ServiceError("a reason is required (--reason)")
    runs = T["runs"]
    with engine.begin() as c:
        session = c.execute(select(T["sessions"]).where(T["sessions"].c.id == session_id)).first()
        if session is None:
            raise ServiceError(f"unknown session {session_id}")
        latest = c.execute(select(runs).where(runs.c.session_id == session_id)
                           .order_by(runs.c.version.desc()).limit(1)).first()
        if latest is None:
            raise ServiceError(f"session {session_id} is not closed yet: there is nothing to reallocate")
        if latest.version > 1:
            before = c.execute(select(runs.c.changes).where(runs.c.session_id == session_id,
                                                             runs.c.version == latest.version - 1)).scalar_one()
            if merged(before or {}, changes) == latest.changes:
                return latest.id, False  # the request that made the latest version, sent again
        if latest.prepared_at is None:
            raise ServiceError(f"session {session_id}: run {latest.version} is still under way; try again when it is done")
        _check(c, session_id, latest, changes)
        cumulative = merged(latest.changes or {}, changes)
        digest = hashlib.sha256((session.input_hash + json.dumps(cumulative, sort_keys=True)).encode()).hexdigest()
        known = c.execute(select(runs.c.id).where(runs.c.session_id == session_id, runs.c.input_hash == digest)).scalar()
        if known is not None:
            return known, False
        try:
            created = c.execute(runs.insert().values(
                session_id=session_id, version=latest.version + 1, operator=operator.strip(), reason=reason.strip(),
                changes=cumulative, input_hash=digest, created_at=now).returning(runs.c.id)).scalar_one()
        except IntegrityError:
            raise ServiceError(f"another reallocation of session {session_id} was recorded at the same time; "
                               "run `vialflow runs` and try again") from None
    return created, True


def _check(c: Connection, session_id: str, latest, changes: Changes) -> None:
    session = session_rules(c, session_id)
    for key, vials in changes.supply.items():
        if key not in session.vaccines:
            raise ServiceError(f"supply: unknown vaccine {key!r} (this session has {', '.join(session.vaccines)})")
    orders = T["orders"]
    wanted = set(changes.cancel) | {r.order_id for r in changes.redistribution}
    found = set(c.execute(select(orders.c.order_id).where(orders.c.session_id == session_id,
                                                          orders.c.order_id.in_(sorted(wanted) or [""]))).scalars())
    for order_id in sorted(wanted - found):
        raise ServiceError(f"unknown order {order_id} in session {session_id}")
    depots = set(registers(c, session_id, "depots")["depot_id"])
    for day in changes.depot_days:
        if day.depot_id not in depots:
            raise ServiceError(f"depot_days: unknown depot {day.depot_id}")
    gone_out = delivered(c, latest.id, changes.effective)
    for order_id in changes.cancel:
        if order_id in set(gone_out["order_id"]):
            raise ServiceError(f"cancel: order {order_id} has a delivery dated on or before {changes.effective}: "
                               "it has left the depot")
    for key, vials in changes.supply.items():
        gone = int(gone_out.loc[gone_out["vaccine"] == key, "vials"].sum())
        if vials < gone:
            raise ServiceError(f"supply: {vials} {key} vials is less than the {gone} already delivered "
                               f"on or before {changes.effective}")
    _check_redistributions(c, session_id, latest, changes)


def _check_redistributions(c: Connection, session_id: str, latest, changes: Changes) -> None:
    """R10: unclaimed vials may go to another professional one week after their delivery."""
    if not changes.redistribution:
        return
    professionals = set(registers(c, session_id, "professionals")["rpps"])
    week_old = delivered(c, latest.id, changes.effective - dt.timedelta(days=7))
    already = {}
    for earlier in (latest.changes or {}).get("redistribution", []):
        already[earlier["order_id"]] = already.get(earlier["order_id"], 0) + earlier["vials"]
    for item in changes.redistribution:
        if item.to_rpps not in professionals:
            raise ServiceError(f"redistribution of {item.order_id}: the receiving professional is not in the register")
        available = int(week_old.loc[week_old["order_id"] == item.order_id, "vials"].sum()) - already.get(item.order_id, 0)
        if item.vials > available:
            raise ServiceError(f"redistribution of {item.order_id}: {item.vials} vials asked, {max(available, 0)} of "
                               f"its vials were delivered a week or more before {changes.effective} and not yet "
                               "redistributed")
        already[item.order_id] = already.get(item.order_id, 0) + item.vials
