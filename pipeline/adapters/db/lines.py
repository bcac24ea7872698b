"""The read model of a run's lines: each line with its decision and its deliveries (`lines`), which emails,
support, explain and the output files all read; and what changed between two runs."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd
from sqlalchemy import Connection, and_, except_, func, or_, select, true, union

from pipeline.domain.allocate import TRACE_COLUMNS
from pipeline.domain.rules import NAMED_KINDS

from .frames import among, read_copy, read_frame
from .tables import Base

T = Base.metadata.tables
LINE_COLUMNS = ["order_id", "finess", "effector", "rpps", "vaccine", "injection", "requested", "allocated",
                "status", "reason", "rank", "capped", "submitted_at"]


@dataclass(frozen=True)
class Lines:
    """The read model of a run's lines: each line (LINE_COLUMNS) and its deliveries
    (order_id, depot_id, vaccine, delivery_date, vials, status; `delivery_date` None when pending)."""

    lines: pd.DataFrame
    deliveries: pd.DataFrame


def read(c: Connection, run: int, session_id: str, *, order_ids: list[str] | None = None,
          officines: list[str] | None = None, people: list[str] | None = None, trace: bool = False) -> Lines:
    """The run's lines, all of them or only those of `order_ids`, or of these officines and of
    these professionals (a doctor's, occupational doctor's or midwife's own lines), with their
    deliveries; with `trace`, each line's TRACE_COLUMNS too. Officines and people are two look-ups on
    their own index rather than one OR that scans every line."""
    o, d, v = T["orders"], T["decisions"], T["deliveries"]
    columns = LINE_COLUMNS + (TRACE_COLUMNS if trace else [])
    base = (select(*[o.c[n] for n in LINE_COLUMNS[1:6]], d.c.order_id, d.c.requested, d.c.allocated, d.c.status,
                   d.c.reason, d.c.rank, d.c.capped, o.c.submitted_at, *[d.c[n] for n in TRACE_COLUMNS if trace])
            .join(d, and_(d.c.run_id == run, d.c.order_id == o.c.order_id)).where(o.c.session_id == session_id))
    if officines is None and people is None:
        wheres = [among(c, d.c.order_id, order_ids)] if order_ids is not None else [true()]
    else:
        wheres = ([among(c, o.c.finess, officines)] if officines is not None else []) + (
            [and_(among(c, o.c.rpps, people), o.c.effector.in_(NAMED_KINDS))] if people is not None else [])
    whole = order_ids is None and officines is None and people is None  # by COPY on PostgreSQL
    found = pd.concat([(read_copy if whole else read_frame)(c, base.where(where)) for where in wheres],
                      ignore_index=True)
    found = found.drop_duplicates("order_id")[columns].reset_index(drop=True)
    days = select(v.c.order_id, v.c.depot_id, v.c.vaccine, v.c.delivery_date, v.c.vials, v.c.status).where(v.c.run_id == run)
    if whole:
        deliveries = read_copy(c, days)
    else:  # the deliveries of the lines found, through the (run, order) index
        deliveries = read_frame(c, days.where(among(c, v.c.order_id, found["order_id"].tolist())))
    return Lines(found, deliveries)


def changed_lines(c: Connection, before: int, after: int) -> list[str]:
    """The order ids whose decision (allocated, status, reason) or deliveries (each date and its vials,
    as many times as they occur) differ between two stored runs of a session, or that only `after` has:
    the lines whose emails may change (R11), found by the database without reading either run whole."""
    d, v = T["decisions"], T["deliveries"]
    old = d.alias("old")
    decided = (select(d.c.order_id)
               .join(old, and_(old.c.run_id == before, old.c.order_id == d.c.order_id), isouter=True)
               .where(d.c.run_id == after, or_(old.c.order_id.is_(None), old.c.allocated != d.c.allocated,
                                               old.c.status != d.c.status, old.c.reason != d.c.reason)))

    def pieces(run: int):
        return (select(v.c.order_id, v.c.delivery_date, v.c.vials, func.count().label("times"))
                .where(v.c.run_id == run).group_by(v.c.order_id, v.c.delivery_date, v.c.vials))

    moved = [except_(pieces(a), pieces(b)).subquery() for a, b in ((after, before), (before, after))]
    query = union(decided, *(select(m.c.order_id) for m in moved))
    return sorted(c.execute(query).scalars())


def order_sessions(c: Connection, order_id: str) -> list[str]:
    """The sessions that have an order line with this id (ids are unique within a session only)."""
    o = T["orders"]
    return list(c.execute(select(o.c.session_id).where(o.c.order_id == order_id).distinct()
                          .order_by(o.c.session_id)).scalars())


def first_refused_for_supply(c: Connection, run: int, session_id: str, vaccine: str) -> dt.datetime | None:
    """R7: the submission instant of the vaccine's first line, in submission order, refused for supply."""
    o, d = T["orders"], T["decisions"]
    found = read_frame(c, select(o.c.submitted_at).join(d, and_(d.c.run_id == run, d.c.order_id == o.c.order_id))
                       .where(o.c.session_id == session_id, o.c.vaccine == vaccine, d.c.status == "refused",
                              d.c.reason == "supply").order_by(d.c.rank).limit(1))
    return found["submitted_at"].iloc[0] if len(found) else None
