"""The pipeline's steps as use cases: load a session, close it (R1), allocate (R1–R7), schedule (R8).

Each step checks its run's stamp under a row lock and stores its results and its stamp in one
transaction: running a step twice (a redelivered task, two workers) does nothing the second time,
and a crash before the commit leaves nothing half-written.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import pandas as pd
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError

from pipeline.adapters import logs
from pipeline.adapters.db import runs, sessions
from pipeline.adapters.files.scenario import Scenario
from pipeline.domain.allocate import allocate
from pipeline.domain.changes import RunChanges
from pipeline.domain.schedule import schedule_deliveries
from pipeline.domain.vocabulary import RunStep

from .chain import ALLOCATE, SCHEDULE, Step, before, last_done
from .refusals import NoRun, SessionHeld, SessionLoadedOtherwise, UnknownRun, UnknownSession

# What a step did: its work now, or found it done before; or it left the run alone because
# another worker holds it or the step before has not finished. Only the first two pass the baton.
DONE, ALREADY, BUSY, WAITING = "done", "already", "busy", "waiting"
PASS_ON = (DONE, ALREADY)


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
        known = sessions.session_hash(c, session.id)
        if known is not None:
            if known != digest:
                raise SessionLoadedOtherwise(session.id)
            return session.id
        sessions.insert_session(c, scenario, digest, now, json.loads(session.model_dump_json()))
    return session.id


def close_session(engine: Engine, session_id: str, now: dt.datetime) -> int:
    """R1: freeze the session's orders and open its first run. Returns the run id (the same
    one however often it is called)."""
    try:
        with engine.begin() as c:
            row = sessions.session_row(c, session_id, lock=True)
            if row is None:
                raise UnknownSession(session_id)
            if row.state == "open":
                with logs.step(RunStep.CLOSE, session=session_id, run=1):
                    sessions.close(c, session_id, row.input_hash, now)
    except IntegrityError:
        pass  # another worker closed it first: its run is the run
    return run_id(engine, session_id, 1)


def sessions_due(engine: Engine, now: dt.datetime) -> list[str]:
    """Open sessions whose window has closed at `now`."""
    with engine.connect() as c:
        return sessions.sessions_due(c, now)


def hold(engine: Engine, session_id: str, holder: str, now: dt.datetime, seconds: float, gone) -> None:
    """One command at a time per session: take or renew the hold, or say who has it."""
    with engine.begin() as c:
        other = sessions.hold_session(c, session_id, holder, now, now + dt.timedelta(seconds=seconds), gone)
    if other is not None:
        raise SessionHeld(session_id, other.split("#")[0])


def release(engine: Engine, session_id: str, holder: str) -> None:
    with engine.begin() as c:
        sessions.release_session(c, session_id, holder)


def stalled(engine: Engine, before: dt.datetime) -> list[int]:
    """Runs not yet prepared whose last step ended before `before`: the message carrying them on was lost."""
    with engine.connect() as c:
        return runs.stalled_runs(c, before)


def stored_run(c: Connection, session_id: str, version: int | None) -> int:
    """The id of a session's stored version (default: the latest); an unknown session or version refused."""
    if sessions.session_row(c, session_id) is None:
        raise UnknownSession(session_id)
    found = runs.run_id(c, session_id, version)
    if found is None:
        raise NoRun(session_id, version)
    return found


def run_id(engine: Engine, session_id: str, version: int | None = None) -> int:
    with engine.connect() as c:
        found = runs.run_id(c, session_id, version)
    if found is None:
        raise NoRun(session_id, version)
    return found


def version_of(engine: Engine, run: int) -> int:
    with engine.connect() as c:
        return runs.run_row(c, run).version


def gate(c: Connection, run: int, step: Step):
    """Lock the run for `step`, which stamps its column once the step before it has stamped its own.
    Returns (outcome, row): an outcome when the step has nothing to do now, else None and the locked row."""
    row = runs.lock_run(c, run)
    if row is None:
        if not runs.run_exists(c, run):
            raise UnknownRun(run)
        return BUSY, None
    if row._mapping[step.stamp] is not None:
        return ALREADY, row
    waited = before(step)
    if waited is not None and waited.stamp is not None and row._mapping[waited.stamp] is None:
        return WAITING, row
    return None, row


def record_failure(engine: Engine, step: RunStep, target: int | str | None, message: str) -> None:
    """A step failed for good: keep which and why, on the run (or the session for the close)."""
    with engine.begin() as c:
        runs.record_failure(c, target, step, message)


def allocate_run(engine: Engine, run: int, now: dt.datetime) -> str:
    """R1–R7 on the run's session."""
    with engine.begin() as c:
        outcome, row = gate(c, run, ALLOCATE)
        if outcome:
            return outcome
        with logs.step(RunStep.ALLOCATE, session=row.session_id, run=row.version, run_id=run) as counts:
            previous = runs.previous_run(c, row)
            delivered = (runs.delivered(c, previous.id, row.changes.effective)
                         if previous is not None and row.changes.effective is not None else None)
            decisions = decide(c, row.session_id, row.changes, delivered)
            runs.insert_decisions(c, run, decisions)
            runs.stamp(c, run, allocated_at=now)
            counts.update(lines=len(decisions), requested=int(decisions["requested"].sum()),
                          allocated=int(decisions["allocated"].sum()))
    return DONE


def schedule_run(engine: Engine, run: int, now: dt.datetime) -> str:
    """R8 on the run's served lines."""
    with engine.begin() as c:
        outcome, row = gate(c, run, SCHEDULE)
        if outcome:
            return outcome
        with logs.step(RunStep.SCHEDULE, session=row.session_id, run=row.version, run_id=run) as counts:
            deliveries = plan(c, row.session_id, row.changes, runs.previous_run(c, row),
                              runs.served_lines(c, row.session_id, run))
            runs.insert_deliveries(c, run, deliveries)
            runs.stamp(c, run, scheduled_at=now)
            vials = deliveries.groupby("status")["vials"].sum()
            counts.update(deliveries=len(deliveries), scheduled=int(vials.get("scheduled", 0)),
                          pending=int(vials.get("pending", 0)))
    return DONE


def decide(c: Connection, session_id: str, changes: RunChanges, delivered: pd.DataFrame | None = None) -> pd.DataFrame:
    """R1–R7: every line's decision, with its trace, under a run's cumulative `changes` (supplies,
    cancellations, policies). `delivered`: the previous version's deliveries dated on or before the
    changes' effective date; a line of a vaccine whose policy the changes set keeps what it has
    received (R11), the policy sharing the rest. Shared by the allocation step, the preview of a
    reallocation and verify, so that all three decide alike."""
    return allocate(changes.applied_to(sessions.session_rules(c, session_id)), sessions.session_orders(c, session_id),
                    sessions.registers(c, session_id, "pharmacies"), sessions.registers(c, session_id, "professionals"),
                    cancelled=changes.cancel, supply=changes.supply or None, trace=True,
                    floors=received(changes, delivered))


def received(changes: RunChanges, delivered: pd.DataFrame | None) -> dict[str, int] | None:
    """The vials each line of a vaccine with a policy set by `changes` has received (`delivered`)."""
    changed = sorted(set(changes.allocation) | set(changes.remainders))
    if delivered is None or not changed or delivered.empty:
        return None
    mine = delivered[delivered["vaccine"].isin(changed)]
    return {k: int(v) for k, v in mine.groupby("order_id")["vials"].sum().items()}


def plan(c: Connection, session_id: str, changes: RunChanges, previous, served: pd.DataFrame,
         previous_deliveries: pd.DataFrame | None = None) -> pd.DataFrame:
    """R8, R11: the deliveries of the `served` lines (order_id, finess, depot_id, vaccine, allocated,
    rank) under `changes`, keeping what the `previous` run (None for the first) has delivered by the
    change's effective date: its stored deliveries, or `previous_deliveries` when given (a run derived
    again by `vialflow verify`). Shared by the scheduling step, the preview and verify."""
    session = sessions.session_rules(c, session_id)
    depot_days = depot_days_with_changes(sessions.registers(c, session_id, "depot_days"), changes)
    if previous_deliveries is not None and previous is not None and changes.effective is not None:
        frozen, start = delivered_by(previous_deliveries, changes.effective), changes.effective
    else:
        frozen, start = frozen_deliveries(c, previous, changes)
    return schedule_deliveries(served, sessions.registers(c, session_id, "depots"), depot_days, session.vaccines,
                               start=start, frozen=frozen)


def frozen_deliveries(c: Connection, previous, changes: RunChanges) -> tuple[pd.DataFrame | None, dt.date | None]:
    """R11: the previous version's deliveries dated on or before the change's effective date stay."""
    if previous is None or changes.effective is None:
        return None, None
    return runs.delivered(c, previous.id, changes.effective), changes.effective


def delivered_by(deliveries: pd.DataFrame, day: dt.date) -> pd.DataFrame:
    """Of a run's `deliveries`, those dated on or before `day`, as `runs.delivered` reads them stored."""
    dates = pd.to_datetime(deliveries["delivery_date"], errors="coerce")
    gone = deliveries[(deliveries["status"] == "scheduled") & dates.notna() & (dates <= pd.Timestamp(day))]
    days = pd.Series([when.date() for when in dates[gone.index]], index=gone.index, dtype=object)
    return gone.assign(delivery_date=days)[["order_id", "depot_id", "vaccine", "delivery_date",
                                            "vials"]].reset_index(drop=True)


def served_of(decisions: pd.DataFrame, pharmacies: pd.DataFrame) -> pd.DataFrame:
    """The lines with vials to deliver, as `runs.served_lines` reads them stored: order_id, finess,
    depot_id (the officine's), vaccine, allocated, rank."""
    served = decisions.loc[decisions["allocated"] > 0, ["order_id", "finess", "vaccine", "allocated", "rank"]]
    served.insert(2, "depot_id", served["finess"].map(pharmacies.set_index("finess")["depot_id"]))
    return served.reset_index(drop=True)


def depot_days_with_changes(depot_days: pd.DataFrame, changes: RunChanges) -> pd.DataFrame:
    """The session's day overrides with the operator's on top (theirs win for the same day)."""
    if not changes.depot_days:
        return depot_days
    extra = pd.DataFrame([day.model_dump() for day in changes.depot_days],
                         columns=["depot_id", "date", "capacity_vials"])
    both = pd.concat([depot_days, extra], ignore_index=True)
    return both.drop_duplicates(["depot_id", "date"], keep="last").reset_index(drop=True)


def progress(engine: Engine, session_id: str) -> dict:
    """Where a session's latest run stands, for those who wait on it: `done`, the last step stored
    (None before the close), and why a step failed for good, if one did."""
    with engine.connect() as c:
        session = sessions.session_row(c, session_id)
        run = runs.latest_run(c, session_id)
    if run is None:
        return {"done": None, "error": session.error, "failed_step": RunStep.CLOSE if session.error else None,
                "run": None}
    return {"done": last_done(run), "error": run.error, "failed_step": RunStep.of(run.failed_step), "run": run.id}
