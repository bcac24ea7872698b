"""A session's runs: each version's row, its step stamps and its lock, and its stored decisions and
deliveries. Functions take an open connection; services own transactions."""

from __future__ import annotations

import datetime as dt

import pandas as pd
from sqlalchemy import Connection, and_, func, select, update

from pipeline.domain.allocate import TRACE_COLUMNS

from .frames import insert_frame, read_copy, read_frame
from .tables import Base

T = Base.metadata.tables
STAMPS = ("allocated_at", "scheduled_at", "prepared_at", "sending_at", "exported_at", "settled_at")
STORED_DECISION_COLUMNS = ["order_id", "rank", "requested", "capped", "allocated", "status", "reason", *TRACE_COLUMNS]
STORED_DELIVERY_COLUMNS = ["order_id", "depot_id", "vaccine", "delivery_date", "vials", "status"]


def run_row(c: Connection, run: int):
    return c.execute(select(T["runs"]).where(T["runs"].c.id == run)).one()


def run_id(c: Connection, session_id: str, version: int | None = None) -> int | None:
    runs = T["runs"]
    query = select(runs.c.id).where(runs.c.session_id == session_id)
    query = query.where(runs.c.version == version) if version else query.order_by(runs.c.version.desc()).limit(1)
    return c.execute(query).scalar()


def latest_run(c: Connection, session_id: str):
    runs = T["runs"]
    return c.execute(select(runs).where(runs.c.session_id == session_id)
                     .order_by(runs.c.version.desc()).limit(1)).first()


def previous_run(c: Connection, run):
    runs = T["runs"]
    return c.execute(select(runs).where(runs.c.session_id == run.session_id, runs.c.version == run.version - 1)).first()


def run_with_hash(c: Connection, session_id: str, digest: str) -> int | None:
    runs = T["runs"]
    return c.execute(select(runs.c.id).where(runs.c.session_id == session_id, runs.c.input_hash == digest)).scalar()


def insert_run(c: Connection, session_id: str, version: int, operator: str, reason: str, changes: dict,
               digest: str, now: dt.datetime) -> int:
    """A new run version (IntegrityError when another took the same version meanwhile)."""
    runs = T["runs"]
    return c.execute(runs.insert().values(
        session_id=session_id, version=version, operator=operator, reason=reason, changes=changes,
        input_hash=digest, created_at=now).returning(runs.c.id)).scalar_one()


def lock_run(c: Connection, run: int):
    """The run's row, locked for this transaction; None when another transaction holds it, or when
    there is no such run (`run_exists` tells which)."""
    runs = T["runs"]
    return c.execute(select(runs).where(runs.c.id == run).with_for_update(skip_locked=True)).first()


def run_exists(c: Connection, run: int) -> bool:
    return c.execute(select(T["runs"].c.id).where(T["runs"].c.id == run)).first() is not None


def stamp(c: Connection, run: int, **values) -> None:
    c.execute(update(T["runs"]).where(T["runs"].c.id == run).values(**values))


def record_failure(c: Connection, target: int | str | None, step: str, message: str) -> None:
    """A step failed for good: which and why, on the run (or why, on the session, for the close)."""
    if isinstance(target, str):
        c.execute(update(T["sessions"]).where(T["sessions"].c.id == target).values(error=message[:2000]))
    else:
        c.execute(update(T["runs"]).where(T["runs"].c.id == target).values(error=message[:2000], failed_step=step))


def session_runs(c: Connection, session_ids: list[str]) -> pd.DataFrame:
    r = T["runs"]
    return read_frame(c, select(r.c.id, r.c.session_id, r.c.version, r.c.created_at, r.c.operator, r.c.reason,
                                r.c.input_hash, *[r.c[n] for n in STAMPS], r.c.error, r.c.failed_step,
                                r.c.view_failure, r.c.digest)
                      .where(r.c.session_id.in_(session_ids)).order_by(r.c.session_id, r.c.version))


def run_changes(c: Connection, session_ids: list[str]) -> dict[int, dict]:
    r = T["runs"]  # JSON decoded by SQLAlchemy, which read_frame's driver values are not
    return dict(c.execute(select(r.c.id, r.c.changes).where(r.c.session_id.in_(session_ids))).all())


def run_counts(c: Connection, session_id: str) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Per run of the session: lines and allocated vials; vials per delivery status; emails per state."""
    r, d, v, b = T["runs"], T["decisions"], T["deliveries"], T["outbox"]
    of_session = r.c.session_id == session_id
    lines = read_frame(c, select(d.c.run_id, func.count().label("lines"), func.sum(d.c.allocated).label("vials"))
                       .join(r, r.c.id == d.c.run_id).where(of_session).group_by(d.c.run_id))
    vials = read_frame(c, select(v.c.run_id, v.c.status, func.sum(v.c.vials).label("vials"))
                       .join(r, r.c.id == v.c.run_id).where(of_session).group_by(v.c.run_id, v.c.status))
    emails = read_frame(c, select(b.c.run_id, b.c.state, func.count().label("n"))
                        .join(r, r.c.id == b.c.run_id).where(of_session).group_by(b.c.run_id, b.c.state))
    return lines, vials, emails


def stalled_runs(c: Connection, before: dt.datetime) -> list[int]:
    """Runs not yet prepared, without an error, whose last step is older than `before`: the message
    that should carry them on was lost (a broker no worker consumes, a purged queue)."""
    runs = T["runs"]
    last = func.coalesce(runs.c.scheduled_at, runs.c.allocated_at, runs.c.created_at)
    return list(c.execute(select(runs.c.id).where(runs.c.prepared_at.is_(None), runs.c.error.is_(None), last <= before)
                          .order_by(runs.c.id)).scalars())


def insert_decisions(c: Connection, run: int, decisions: pd.DataFrame) -> None:
    insert_frame(c, T["decisions"], decisions[STORED_DECISION_COLUMNS], run_id=run)


def insert_deliveries(c: Connection, run: int, deliveries: pd.DataFrame) -> None:
    insert_frame(c, T["deliveries"], deliveries[STORED_DELIVERY_COLUMNS], run_id=run)


def stored_decisions(c: Connection, run: int) -> pd.DataFrame:
    """A run's decisions as stored (STORED_DECISION_COLUMNS)."""
    d = T["decisions"]
    return read_frame(c, select(*[d.c[n] for n in STORED_DECISION_COLUMNS]).where(d.c.run_id == run))


def stored_deliveries(c: Connection, run: int) -> pd.DataFrame:
    """A run's deliveries as stored (STORED_DELIVERY_COLUMNS; delivery_date None when pending)."""
    v = T["deliveries"]
    return read_frame(c, select(*[v.c[n] for n in STORED_DELIVERY_COLUMNS]).where(v.c.run_id == run))


def served_lines(c: Connection, session_id: str, run: int) -> pd.DataFrame:
    """Lines with vials to deliver: order_id, finess, depot_id, vaccine, allocated, rank."""
    d, o, p = T["decisions"], T["orders"], T["pharmacies"]
    return read_copy(c, select(d.c.order_id, o.c.finess, p.c.depot_id, o.c.vaccine, d.c.allocated, d.c.rank)
                     .join(o, and_(o.c.session_id == session_id, o.c.order_id == d.c.order_id))
                     .join(p, and_(p.c.session_id == session_id, p.c.finess == o.c.finess))
                     .where(d.c.run_id == run, d.c.allocated > 0))


def delivered(c: Connection, run: int, day: dt.date) -> pd.DataFrame:
    """A run's deliveries dated on or before `day`: order_id, depot_id, vaccine, delivery_date, vials."""
    v = T["deliveries"]
    return read_frame(c, select(v.c.order_id, v.c.depot_id, v.c.vaccine, v.c.delivery_date, v.c.vials).where(
        v.c.run_id == run, v.c.status == "scheduled", v.c.delivery_date <= day))
