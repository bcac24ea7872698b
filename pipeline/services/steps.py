"""Use cases: gather from the database, call the pure core, store its result, return ids.

Each step checks its run's stamp under a row lock and stores its results and its stamp in one
transaction: running a step twice (a redelivered task, two workers) does nothing the second time,
and a crash before the commit leaves nothing half-written.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import pandas as pd
from sqlalchemy import Connection, Engine, and_, select, update
from sqlalchemy.exc import IntegrityError

from pipeline.domain.allocate import allocate
from pipeline.domain.rules import Session
from pipeline.domain.schedule import schedule_deliveries
from pipeline.adapters.files.scenario import Scenario
from pipeline.adapters.db.frames import insert_frame, read_frame
from pipeline.adapters.db.tables import Base

T = Base.metadata.tables
REGISTERS = {"pharmacies": ["finess", "name", "email", "department", "depot_id"],
             "professionals": ["rpps", "kind", "name", "email", "finess"],
             "depots": ["depot_id", "wholesaler", "name", "capacity_vials", "weekdays"],
             "depot_days": ["depot_id", "date", "capacity_vials"]}
ORDER_COLUMNS = ["order_id", "line", "submitted_at", "finess", "effector", "rpps", "vaccine", "injection", "vials"]
DECISION_COLUMNS = ["order_id", "rank", "requested", "capped", "allocated", "status", "reason"]


class ServiceError(Exception):
    """A request that cannot be carried out; the message is one sentence for the person who made it."""


def scenario_hash(scenario: Scenario) -> str:
    digest = hashlib.sha256(scenario.session.model_dump_json().encode())
    for name in ("pharmacies", "professionals", "depots", "depot_days", "orders", "rejections"):
        frame = getattr(scenario, name)
        digest.update(",".join([name, *frame.columns]).encode())
        digest.update(pd.util.hash_pandas_object(frame.astype(str), index=False).to_numpy().tobytes())
    return digest.hexdigest()


def store_scenario(engine: Engine, scenario: Scenario, now: dt.datetime) -> str:
    """Load a session, its registers and its orders (`vialflow load`). Loading the same inputs
    again is a no-op; other inputs under the same session id are refused."""
    session = scenario.session
    digest = scenario_hash(scenario)
    with engine.begin() as c:
        known = c.execute(select(T["sessions"].c.input_hash).where(T["sessions"].c.id == session.id)).scalar()
        if known is not None:
            if known != digest:
                raise ServiceError(f"session {session.id} is already loaded with other inputs: "
                                   "use `vialflow reallocate` to change it, or another database")
            return session.id
        c.execute(T["sessions"].insert().values(
            id=session.id, rules=json.loads(session.model_dump_json()), input_hash=digest,
            closes_at=session.closes, confirmation_at=session.confirms, state="open", loaded_at=now))
        for name, columns in REGISTERS.items():
            insert_frame(c, T[name], getattr(scenario, name)[columns], session_id=session.id)
        insert_frame(c, T["orders"], scenario.orders[ORDER_COLUMNS], session_id=session.id)
        insert_frame(c, T["rejections"], scenario.rejections, session_id=session.id)
    return session.id


def close_session(engine: Engine, session_id: str, now: dt.datetime) -> int:
    """R1: freeze the session's orders and open its first run. Returns the run id (the same
    one however often it is called)."""
    sessions, runs = T["sessions"], T["runs"]
    try:
        with engine.begin() as c:
            row = c.execute(select(sessions).where(sessions.c.id == session_id).with_for_update()).first()
            if row is None:
                raise ServiceError(f"unknown session {session_id}")
            if row.state == "open":
                c.execute(runs.insert().values(
                    session_id=session_id, version=1, operator="scheduler", reason="session close",
                    changes={}, input_hash=row.input_hash, created_at=now))
                c.execute(update(sessions).where(sessions.c.id == session_id).values(state="closed", closed_at=now))
    except IntegrityError:
        pass  # another worker closed it first: its run is the run
    return run_id(engine, session_id, 1)


def sessions_due(engine: Engine, now: dt.datetime) -> list[str]:
    """Open sessions whose window has closed at `now`."""
    sessions, now = T["sessions"], now.astimezone(dt.timezone.utc)
    with engine.connect() as c:
        return list(c.execute(select(sessions.c.id).where(sessions.c.state == "open", sessions.c.closes_at <= now)
                              .order_by(sessions.c.closes_at, sessions.c.id)).scalars())


def run_id(engine: Engine, session_id: str, version: int | None = None) -> int:
    runs = T["runs"]
    with engine.connect() as c:
        query = select(runs.c.id).where(runs.c.session_id == session_id)
        query = query.where(runs.c.version == version) if version else query.order_by(runs.c.version.desc()).limit(1)
        found = c.execute(query).scalar()
    if found is None:
        raise ServiceError(f"session {session_id} has no run{f' version {version}' if version else ''} yet")
    return found


# What a step did: its work now, or found it done before; or it left the run alone because
# another worker holds it or the step before has not finished. Only the first two pass the baton.
DONE, ALREADY, BUSY, WAITING = "done", "already", "busy", "waiting"
PASS_ON = (DONE, ALREADY)


def version_of(engine: Engine, run: int) -> int:
    with engine.connect() as c:
        return c.execute(select(T["runs"].c.version).where(T["runs"].c.id == run)).scalar_one()


def _lock_run(c: Connection, run: int):
    """The run's row, locked for this transaction; None when another worker holds it (that
    worker's message is still unacknowledged, so the work is not lost)."""
    runs = T["runs"]
    row = c.execute(select(runs).where(runs.c.id == run).with_for_update(skip_locked=True)).first()
    if row is None and c.execute(select(runs.c.id).where(runs.c.id == run)).first() is None:
        raise ServiceError(f"unknown run {run}")
    return row


def _gate(c: Connection, run: int, stamp: str, after: str | None = None):
    """Lock the run for a step that stamps `stamp` once `after` is stamped. Returns (outcome, row):
    an outcome when the step has nothing to do now, else None and the locked row."""
    row = _lock_run(c, run)
    if row is None:
        return BUSY, None
    if row._mapping[stamp] is not None:
        return ALREADY, row
    if after is not None and row._mapping[after] is None:
        return WAITING, row
    return None, row


def record_failure(engine: Engine, step: str, target: int | str | None, message: str) -> None:
    """A step failed for good: keep why, on the run (or the session for the close)."""
    table = T["sessions"] if isinstance(target, str) else T["runs"]
    with engine.begin() as c:
        c.execute(update(table).where(table.c.id == target).values(error=f"{step}: {message}"[:2000]))


def _stamp(c: Connection, run: int, **values) -> None:
    c.execute(update(T["runs"]).where(T["runs"].c.id == run).values(**values))


def session_rules(c: Connection, session_id: str) -> Session:
    rules = c.execute(select(T["sessions"].c.rules).where(T["sessions"].c.id == session_id)).scalar_one()
    return Session.model_validate(rules)


def registers(c: Connection, session_id: str, name: str) -> pd.DataFrame:
    table = T[name]
    frame = read_frame(c, select(*[table.c[col] for col in REGISTERS[name]])
                       .where(table.c.session_id == session_id).order_by(*table.primary_key.columns))
    return frame if len(frame) else pd.DataFrame(columns=REGISTERS[name])


def session_orders(c: Connection, session_id: str) -> pd.DataFrame:
    orders = T["orders"]
    frame = read_frame(c, select(*[orders.c[col] for col in ORDER_COLUMNS]).where(orders.c.session_id == session_id))
    frame["submitted_at"] = pd.to_datetime(frame["submitted_at"], utc=True)
    return frame


def allocate_run(engine: Engine, run: int, now: dt.datetime) -> str:
    """R1–R7 on the run's session."""
    with engine.begin() as c:
        outcome, row = _gate(c, run, "allocated_at")
        if outcome:
            return outcome
        session = session_rules(c, row.session_id)
        changes = row.changes or {}
        decisions = allocate(session, session_orders(c, row.session_id), registers(c, row.session_id, "pharmacies"),
                             registers(c, row.session_id, "professionals"), cancelled=changes.get("cancel", ()),
                             supply=changes.get("supply"))
        insert_frame(c, T["decisions"], decisions[DECISION_COLUMNS], run_id=run)
        _stamp(c, run, allocated_at=now)
    return DONE


def served_lines(c: Connection, session_id: str, run: int) -> pd.DataFrame:
    """Lines with vials to deliver: order_id, finess, depot_id, vaccine, allocated, rank."""
    d, o, p = T["decisions"], T["orders"], T["pharmacies"]
    query = (select(d.c.order_id, o.c.finess, p.c.depot_id, o.c.vaccine, d.c.allocated, d.c.rank)
             .join(o, and_(o.c.session_id == session_id, o.c.order_id == d.c.order_id))
             .join(p, and_(p.c.session_id == session_id, p.c.finess == o.c.finess))
             .where(d.c.run_id == run, d.c.allocated > 0))
    return read_frame(c, query)


def schedule_run(engine: Engine, run: int, now: dt.datetime) -> str:
    """R8 on the run's served lines."""
    with engine.begin() as c:
        outcome, row = _gate(c, run, "scheduled_at", after="allocated_at")
        if outcome:
            return outcome
        session = session_rules(c, row.session_id)
        depot_days = depot_days_with_changes(registers(c, row.session_id, "depot_days"), row)
        frozen, start = frozen_deliveries(c, row)
        deliveries = schedule_deliveries(served_lines(c, row.session_id, run), registers(c, row.session_id, "depots"),
                                         depot_days, session.vaccines, start=start, frozen=frozen)
        insert_frame(c, T["deliveries"], deliveries[["order_id", "depot_id", "vaccine", "delivery_date", "vials", "status"]],
                     run_id=run)
        _stamp(c, run, scheduled_at=now)
    return DONE


def previous_run(c: Connection, run) -> object | None:
    runs = T["runs"]
    return c.execute(select(runs).where(runs.c.session_id == run.session_id, runs.c.version == run.version - 1)).first()


def frozen_deliveries(c: Connection, run) -> tuple[pd.DataFrame | None, dt.date | None]:
    """R11: the previous version's deliveries dated on or before the change's effective date stay."""
    effective = (run.changes or {}).get("effective")
    before = previous_run(c, run)
    if before is None or effective is None:
        return None, None
    day = dt.date.fromisoformat(effective)
    return delivered(c, before.id, day), day


def delivered(c: Connection, run: int, day: dt.date) -> pd.DataFrame:
    """A run's deliveries dated on or before `day`: order_id, depot_id, vaccine, delivery_date, vials."""
    v = T["deliveries"]
    return read_frame(c, select(v.c.order_id, v.c.depot_id, v.c.vaccine, v.c.delivery_date, v.c.vials).where(
        v.c.run_id == run, v.c.status == "scheduled", v.c.delivery_date <= day))


def depot_days_with_changes(depot_days: pd.DataFrame, run) -> pd.DataFrame:
    """The session's day overrides with the operator's on top (theirs win for the same day)."""
    extra = pd.DataFrame((run.changes or {}).get("depot_days", []), columns=["depot_id", "date", "capacity_vials"])
    if extra.empty:
        return depot_days
    extra["date"] = [dt.date.fromisoformat(d) for d in extra["date"]]
    both = pd.concat([depot_days, extra], ignore_index=True)
    return both.drop_duplicates(["depot_id", "date"], keep="last").reset_index(drop=True)


def progress(engine: Engine, session_id: str) -> dict:
    """Where a session's latest run stands, for those who wait on it."""
    sessions, runs = T["sessions"], T["runs"]
    with engine.connect() as c:
        session = c.execute(select(sessions.c.state, sessions.c.error).where(sessions.c.id == session_id)).one()
        run = c.execute(select(runs).where(runs.c.session_id == session_id)
                        .order_by(runs.c.version.desc()).limit(1)).first()
    if run is None:
        return {"step": "closing", "error": session.error, "run": None}
    step = ("prepared" if run.prepared_at else "scheduled" if run.scheduled_at
            else "allocated" if run.allocated_at else "allocating")
    return {"step": step, "error": run.error, "run": run.id}
