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

from pipeline.adapters.db import lines, outbox, runs, sessions
from pipeline.domain.changes import Changes, merged
from pipeline.domain.fairness import fairness
from pipeline.domain.versions import differences

from .confirmations import rewritten
from .refusals import (CancelAfterDelivery, ConcurrentReallocation, LineBelowDelivered, OperatorRequired,
                       ReasonRequired, RunUnderWay, SessionNotClosed, SupplyBelowDelivered, TooManyRedistributed,
                       UnknownDepot, UnknownOrderInChanges, UnknownReceiver, UnknownSession, UnknownVaccine)
from .runs import decide, plan, served_of


def request_reallocation(engine: Engine, session_id: str, changes: Changes, operator: str, reason: str,
                         now: dt.datetime) -> tuple[int, bool]:
    """Record the request as the session's next run version. Returns (run id, created); an
    identical request returns the version it made before. Nothing is written when it is refused."""
    if not operator.strip():
        raise OperatorRequired()
    if not reason.strip():
        raise ReasonRequired()
    with engine.begin() as c:
        session, latest = _session_and_latest(c, session_id)
        if latest.version > 1 and merged(runs.previous_run(c, latest).changes, changes) == latest.changes:
            return latest.id, False  # the request that made the latest version, sent again
        _ready(session_id, latest)
        _check(c, session_id, latest, changes)
        cumulative = merged(latest.changes, changes)
        stored = json.dumps(cumulative.stored(), sort_keys=True)
        digest = hashlib.sha256((session.input_hash + stored).encode()).hexdigest()
        known = runs.run_with_hash(c, session_id, digest)
        if known is not None:
            return known, False
        try:
            created = runs.insert_run(c, session_id, latest.version + 1, operator.strip(), reason.strip(),
                                      cumulative, digest, now)
        except IntegrityError:
            raise ConcurrentReallocation(session_id) from None
    return created, True


def preview_reallocation(engine: Engine, session_id: str, changes: Changes) -> dict:
    """What recording `changes` would do, written nowhere: the lines whose allocation, reason or
    deliveries would change (sorted by order_id), the deliveries that move, the vials per vaccine
    before and after, the recipients (FINESS or RPPS, sorted) who would be emailed "annule et
    remplace", and each vaccine's fairness figures before and after. Refused as
    `request_reallocation` refuses."""
    with engine.connect() as c:
        session, latest = _session_and_latest(c, session_id)
        _ready(session_id, latest)
        decisions = _check(c, session_id, latest, changes)
        cumulative = merged(latest.changes, changes)
        pharmacies = sessions.registers(c, session_id, "pharmacies")
        deliveries = plan(c, session_id, cumulative, latest, served_of(decisions, pharmacies))
        new = lines.Lines(decisions[lines.LINE_COLUMNS], deliveries)
        old = lines.read(c, latest.id, session_id)
        emailed = rewritten(c, session_id, latest, cumulative, new, outbox.recipients(c, session_id, latest.id))
        vaccines = list(sessions.session_rules(c, session_id).vaccines)
    before, after = fairness(old.lines, pharmacies, vaccines), fairness(new.lines, pharmacies, vaccines)
    return differences(old.lines, old.deliveries, new.lines, new.deliveries) | {
        "session": session_id, "version": latest.version + 1, "recipients": sorted(emailed["recipient_id"]),
        "fairness": {key: {"before": before[key], "after": after[key]} for key in vaccines}}


def _session_and_latest(c: Connection, session_id: str):
    """The session's row and its latest run, or why there is nothing to reallocate."""
    session = sessions.session_row(c, session_id)
    if session is None:
        raise UnknownSession(session_id)
    latest = runs.latest_run(c, session_id)
    if latest is None:
        raise SessionNotClosed(session_id)
    return session, latest


def _ready(session_id: str, latest) -> None:
    if latest.prepared_at is None:
        raise RunUnderWay(session_id, latest.version)


def _check(c: Connection, session_id: str, latest, changes: Changes) -> pd.DataFrame:
    """Refuse a request that does not fit the session or what has left the depots; the decisions
    the new version would make when it fits."""
    session = sessions.session_rules(c, session_id)
    for field in ("supply", "allocation", "remainders"):
        for key in getattr(changes, field):
            if key not in session.vaccines:
                raise UnknownVaccine(key, tuple(session.vaccines), field)
    wanted = set(changes.cancel) | {r.order_id for r in changes.redistribution}
    found = sessions.known_orders(c, session_id, sorted(wanted))
    for order_id in sorted(wanted - found):
        raise UnknownOrderInChanges(order_id, session_id)
    depots = set(sessions.registers(c, session_id, "depots")["depot_id"])
    for day in changes.depot_days:
        if day.depot_id not in depots:
            raise UnknownDepot(day.depot_id)
    gone_out = runs.delivered(c, latest.id, changes.effective)
    for order_id in changes.cancel:
        if order_id in set(gone_out["order_id"]):
            raise CancelAfterDelivery(order_id, changes.effective)
    for key, vials in changes.supply.items():
        gone = int(gone_out.loc[gone_out["vaccine"] == key, "vials"].sum())
        if vials < gone:
            raise SupplyBelowDelivered(key, vials, gone, changes.effective)
    _check_redistributions(c, session_id, latest, changes)
    # R11: what has left a depot stays delivered, so no line may now get less than it has received.
    decisions = decide(c, session_id, merged(latest.changes, changes), gone_out)
    received = gone_out.groupby("order_id")["vials"].sum()
    short = decisions.set_index("order_id")["allocated"].reindex(received.index) < received
    if short.any():
        order_id = sorted(received.index[short.to_numpy()])[0]
        line = decisions.set_index("order_id").loc[order_id]
        raise LineBelowDelivered(order_id, line["vaccine"], int(line["allocated"]), int(received[order_id]),
                                 changes.effective)
    return decisions


def _check_redistributions(c: Connection, session_id: str, latest, changes: Changes) -> None:
    """R10: unclaimed vials may go to another professional one week after their delivery."""
    if not changes.redistribution:
        return
    professionals = set(sessions.registers(c, session_id, "professionals")["rpps"])
    week_old = runs.delivered(c, latest.id, changes.effective - dt.timedelta(days=7))
    already = {}
    for earlier in latest.changes.redistribution:
        already[earlier.order_id] = already.get(earlier.order_id, 0) + earlier.vials
    for item in changes.redistribution:
        if item.to_rpps not in professionals:
            raise UnknownReceiver(item.order_id)
        delivered = int(week_old.loc[week_old["order_id"] == item.order_id, "vials"].sum())
        available = delivered - already.get(item.order_id, 0)
        if item.vials > available:
            raise TooManyRedistributed(item.order_id, item.vials, max(available, 0), changes.effective)
        already[item.order_id] = already.get(item.order_id, 0) + item.vials
