"""Reallocation by operators (R10, R11): a changes file becomes a new run version of a closed session,
or, previewed, says what that version would change without writing anything.

The request is checked against the stored session before anything is written; the new run keeps
the changes of every earlier version plus this one, and a hash of them: the same request twice
makes one version. A preview decides, plans and chooses the recipients with the very functions the
pipeline's steps use, on the same inputs, so the run that follows does what the preview said.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError

import pandas as pd

from pipeline.adapters.db import queries
from pipeline.domain.changes import Changes, merged
from pipeline.domain.versions import differences

from . import ServiceError
from .confirmations import rewritten
from .runs import decide, plan


def request_reallocation(engine: Engine, session_id: str, changes: Changes, operator: str, reason: str,
                         now: dt.datetime) -> tuple[int, bool]:
    """Record the request as the session's next run version. Returns (run id, created); an
    identical request returns the version it made before. Nothing is written when it is refused."""
    if not operator.strip():
        raise ServiceError("an operator name is required (--operator)")
    if not reason.strip():
        raise ServiceError("a reason is required (--reason)")
    with engine.begin() as c:
        session, latest = _session_and_latest(c, session_id)
        if latest.version > 1 and merged(queries.previous_run(c, latest).changes or {}, changes) == latest.changes:
            return latest.id, False  # the request that made the latest version, sent again
        _ready(session_id, latest)
        _check(c, session_id, latest, changes)
        cumulative = merged(latest.changes or {}, changes)
        digest = hashlib.sha256((session.input_hash + json.dumps(cumulative, sort_keys=True)).encode()).hexdigest()
        known = queries.run_with_hash(c, session_id, digest)
        if known is not None:
            return known, False
        try:
            created = queries.insert_run(c, session_id, latest.version + 1, operator.strip(), reason.strip(),
                                         cumulative, digest, now)
        except IntegrityError:
            raise ServiceError(f"another reallocation of session {session_id} was recorded at the same time; "
                               "run `vialflow runs` and try again") from None
    return created, True


def preview_reallocation(engine: Engine, session_id: str, changes: Changes) -> dict:
    """What recording `changes` would do, written nowhere: the lines whose allocation, reason or
    deliveries would change (sorted by order_id), the deliveries that move, the vials per vaccine
    before and after, and the recipients (FINESS or RPPS, sorted) who would be emailed
    "annule et remplace". Refused as `request_reallocation` refuses."""
    with engine.connect() as c:
        session, latest = _session_and_latest(c, session_id)
        _ready(session_id, latest)
        decisions = _check(c, session_id, latest, changes)
        cumulative = merged(latest.changes or {}, changes)
        served = decisions.loc[decisions["allocated"] > 0, ["order_id", "finess", "vaccine", "allocated", "rank"]]
        depots = queries.registers(c, session_id, "pharmacies").set_index("finess")["depot_id"]
        served.insert(2, "depot_id", served["finess"].map(depots))
        deliveries = plan(c, session_id, cumulative, latest, served.reset_index(drop=True))
        new = queries.Lines(decisions[queries.LINE_COLUMNS], deliveries)
        old = queries.lines(c, latest.id, session_id)
        outbox = rewritten(c, session_id, latest, cumulative, new, queries.recipients(c, session_id, latest.id))
    return differences(old.lines, old.deliveries, new.lines, new.deliveries) | {
        "session": session_id, "version": latest.version + 1, "recipients": sorted(outbox["recipient_id"])}


def _session_and_latest(c: Connection, session_id: str):
    """The session's row and its latest run, or why there is nothing to reallocate."""
    session = queries.session_row(c, session_id)
    if session is None:
        raise ServiceError(f"unknown session {session_id}")
    latest = queries.latest_run(c, session_id)
    if latest is None:
        raise ServiceError(f"session {session_id} is not closed yet: there is nothing to reallocate")
    return session, latest


def _ready(session_id: str, latest) -> None:
    if latest.prepared_at is None:
        raise ServiceError(f"session {session_id}: run {latest.version} is still under way; try again when it is done")


def _check(c: Connection, session_id: str, latest, changes: Changes) -> pd.DataFrame:
    """Refuse a request that does not fit the session or what has left the depots; the decisions
    the new version would make when it fits."""
    session = queries.session_rules(c, session_id)
    for key, vials in changes.supply.items():
        if key not in session.vaccines:
            raise ServiceError(f"supply: unknown vaccine {key!r} (this session has {', '.join(session.vaccines)})")
    wanted = set(changes.cancel) | {r.order_id for r in changes.redistribution}
    found = queries.known_orders(c, session_id, sorted(wanted))
    for order_id in sorted(wanted - found):
        raise ServiceError(f"unknown order {order_id} in session {session_id}")
    depots = set(queries.registers(c, session_id, "depots")["depot_id"])
    for day in changes.depot_days:
        if day.depot_id not in depots:
            raise ServiceError(f"depot_days: unknown depot {day.depot_id}")
    gone_out = queries.delivered(c, latest.id, changes.effective)
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
    # R11: what has left a depot stays delivered, so no line may now get less than it has received.
    decisions = decide(c, session_id, merged(latest.changes or {}, changes))
    received = gone_out.groupby("order_id")["vials"].sum()
    short = decisions.set_index("order_id")["allocated"].reindex(received.index) < received
    if short.any():
        order_id = sorted(received.index[short.to_numpy()])[0]
        line = decisions.set_index("order_id").loc[order_id]
        raise ServiceError(f"supply: line {order_id} would get {int(line['allocated'])} {line['vaccine']} vials, fewer "
                           f"than the {int(received[order_id])} delivered on or before {changes.effective}; "
                           "give that vaccine more supply")
    return decisions


def _check_redistributions(c: Connection, session_id: str, latest, changes: Changes) -> None:
    """R10: unclaimed vials may go to another professional one week after their delivery."""
    if not changes.redistribution:
        return
    professionals = set(queries.registers(c, session_id, "professionals")["rpps"])
    week_old = queries.delivered(c, latest.id, changes.effective - dt.timedelta(days=7))
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
