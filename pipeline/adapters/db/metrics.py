"""What `vialflow metrics` reads at each scrape: counts from the database, so every worker process agrees."""

from __future__ import annotations

from sqlalchemy import Connection, and_, func, or_, select

from .runs import STAMPS
from .tables import Base

T = Base.metadata.tables


def emails(c: Connection) -> list[tuple]:
    """(session, run version, state, emails) for every run's outbox."""
    b, r = T["outbox"], T["runs"]
    return [tuple(row) for row in c.execute(
        select(r.c.session_id, r.c.version, b.c.state, func.count()).join(r, r.c.id == b.c.run_id)
        .group_by(r.c.session_id, r.c.version, b.c.state).order_by(r.c.session_id, r.c.version, b.c.state))]


def lines(c: Connection) -> list[tuple]:
    """(session, run version, vaccine, status, reason, lines, vials requested, vials allocated)."""
    d, o, r = T["decisions"], T["orders"], T["runs"]
    keys = (r.c.session_id, r.c.version, o.c.vaccine, d.c.status, d.c.reason)
    return [tuple(row) for row in c.execute(
        select(*keys, func.count(), func.sum(d.c.requested), func.sum(d.c.allocated))
        .select_from(d).join(r, r.c.id == d.c.run_id)
        .join(o, and_(o.c.session_id == r.c.session_id, o.c.order_id == d.c.order_id))
        .group_by(*keys).order_by(*keys))]


def deliveries(c: Connection) -> list[tuple]:
    """(session, run version, vaccine, status, vials): scheduled and pending vials."""
    v, r = T["deliveries"], T["runs"]
    keys = (r.c.session_id, r.c.version, v.c.vaccine, v.c.status)
    return [tuple(row) for row in c.execute(
        select(*keys, func.sum(v.c.vials)).join(r, r.c.id == v.c.run_id).group_by(*keys).order_by(*keys))]


def oldest_waiting(c: Connection, settled: tuple[str, ...]) -> list[tuple]:
    """(session, when the oldest run with an email still waiting, in no `settled` state, wrote its outbox)."""
    b, r = T["outbox"], T["runs"]
    return [tuple(row) for row in c.execute(
        select(r.c.session_id, func.min(r.c.prepared_at)).join(b, b.c.run_id == r.c.id)
        .where(b.c.state.not_in(settled)).group_by(r.c.session_id).order_by(r.c.session_id))]


def latest_stamps(c: Connection) -> list:
    """Each session's latest run with its step stamps (created, allocated, scheduled, prepared,
    sending, settled) and the instant its last email went out (`last_sent_at`)."""
    r, b = T["runs"], T["outbox"]
    latest = select(r.c.session_id, func.max(r.c.version).label("version")).group_by(r.c.session_id).subquery()
    last_sent = select(func.max(b.c.sent_at)).where(b.c.run_id == r.c.id).scalar_subquery().label("last_sent_at")
    return c.execute(select(r.c.session_id, r.c.version, r.c.created_at, *[r.c[n] for n in STAMPS], r.c.settled_at,
                            last_sent)
                     .join(latest, and_(latest.c.session_id == r.c.session_id, latest.c.version == r.c.version))
                     .order_by(r.c.session_id)).all()


def failures(c: Connection) -> list[tuple]:
    """(session, version, step failed, view failed) of each run where a step failed for good or a
    view (the report) could not be written."""
    r = T["runs"]
    return [(row.session_id, row.version, row.error is not None, row.view_failure is not None) for row in
            c.execute(select(r.c.session_id, r.c.version, r.c.error, r.c.view_failure)
                      .where(or_(r.c.error.is_not(None), r.c.view_failure.is_not(None)))
                      .order_by(r.c.session_id, r.c.version))]
