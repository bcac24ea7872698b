"""What a run's report shows, as small frames: per vaccine, the first-come-first-served timeline, the fill
rate per department, each depot's use of its capacity per day, refusals, emails, and the changes
against the previous version. Drawing them is the report writer's job."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .calendar import capacity_grid, epoch_day
from .allocate import OUTRIGHT
from .explain import sold_out
from .fairness import fairness
from .rules import Session
from .versions import differences

TIMELINE_POINTS = 2_000  # a curve is drawn through at most this many of its lines: the eye sees no more


@dataclass(frozen=True)
class VaccineFigures:
    """One vaccine's row of the report; every optional value typed as such (no NaN, no NaT)."""

    key: str
    label: str
    supply: int | None             # None: unlimited
    requested: int                 # vials asked on its lines
    outright: int                  # of which on lines refused outright (window, zone, eligibility...)
    demand: int                    # what caps and whole boxes left of the rest (the capped demand)
    allocated: int
    sold_out_at: pd.Timestamp | None  # in the session's time zone; None: never sold out

    @property
    def trimmed(self) -> int:
        """Vials the caps (R4, R5) and whole boxes (R6) took off the lines not refused outright."""
        return self.requested - self.outright - self.demand

    @property
    def fill_rate(self) -> float | None:
        return self.allocated / self.demand if self.demand else None


@dataclass
class ReportData:
    session: Session
    version: int
    operator: str
    reason: str
    vaccines: list[VaccineFigures]
    timelines: dict[str, pd.DataFrame]  # per limited vaccine with lines: submitted_at (local), demand, allocated
    departments: pd.DataFrame   # department, lines, demand, allocated, fill_rate (NaN: no demand)
    capacity: pd.DataFrame      # depots × days: share of the day's capacity used (NaN: closed that day)
    pending: pd.DataFrame       # depot_id, wholesaler, pending vials (depots with some)
    refusals: pd.DataFrame      # reason, lines (lines not served in full, by reason)
    emails: dict[str, int]
    changes: dict | None = field(default=None)  # `differences` against the previous version, when there is one
    fairness: dict = field(default_factory=dict)  # per vaccine key, domain/fairness.py's figures
    digest: str | None = None  # the run's `sha256:<hex>`, as stored at the end of prepare (None before)

    def vaccine(self, key: str) -> VaccineFigures:
        return next(v for v in self.vaccines if v.key == key)


def report_data(session: Session, run, lines: pd.DataFrame, deliveries: pd.DataFrame, pharmacies: pd.DataFrame,
                depots: pd.DataFrame, depot_days: pd.DataFrame, emails: dict[str, int],
                previous: tuple[pd.DataFrame, pd.DataFrame] | None = None) -> ReportData:
    """Needs the read model's `lines` (with capped, rank, submitted_at) and `deliveries`, the
    registers, the run's depot days (changes applied), the outbox counts, and the previous
    version's (lines, deliveries) for a reallocation; `run` its version, operator, reason, changes."""
    zone = session.timezone
    supplies = {key: v.supply_vials for key, v in session.vaccines.items()} | run.changes.supply
    sold = sold_out(lines, list(session.vaccines))
    vaccines = []
    for key, rules in session.vaccines.items():
        mine = lines[lines["vaccine"] == key]
        supply = supplies.get(key)
        vaccines.append(VaccineFigures(
            key=key, label=rules.label, supply=None if supply is None else int(supply),
            requested=int(mine["requested"].sum()), outright=int(mine.loc[mine["reason"].isin(OUTRIGHT), "requested"].sum()),
            demand=int(mine["capped"].sum()), allocated=int(mine["allocated"].sum()),
            sold_out_at=None if sold[key] is None else pd.Timestamp(sold[key]).tz_convert(zone)))
    previous_changes = None
    if previous is not None:
        previous_changes = differences(previous[0], previous[1], lines, deliveries)
    return ReportData(session=session, version=int(run.version), operator=run.operator, reason=run.reason,
                      vaccines=vaccines, timelines=_timelines(session, lines, supplies),
                      departments=_departments(lines, pharmacies), capacity=_capacity(session, deliveries, depots,
                                                                                       depot_days),
                      pending=_pending(deliveries, depots), refusals=_refusals(lines), emails=dict(emails),
                      changes=previous_changes, digest=getattr(run, "digest", None),
                      fairness=fairness(lines, pharmacies, list(session.vaccines)))


def _timelines(session: Session, lines: pd.DataFrame, supplies: dict) -> dict[str, pd.DataFrame]:
    found = {}
    for key in session.vaccines:
        if supplies.get(key) is None:
            continue
        mine = lines[(lines["vaccine"] == key) & (lines["capped"] > 0)].sort_values("rank", kind="stable")
        if mine.empty:
            continue
        curve = pd.DataFrame({"submitted_at": mine["submitted_at"].dt.tz_convert(session.timezone).to_numpy(),
                              "demand": mine["capped"].cumsum().to_numpy(),
                              "allocated": mine["allocated"].cumsum().to_numpy()})
        if len(curve) > TIMELINE_POINTS:
            curve = curve.iloc[np.unique(np.linspace(0, len(curve) - 1, TIMELINE_POINTS).astype(int))]
        found[key] = curve.reset_index(drop=True)
    return found


def _departments(lines: pd.DataFrame, pharmacies: pd.DataFrame) -> pd.DataFrame:
    department = lines["finess"].map(pharmacies.set_index("finess")["department"])
    known = lines.assign(department=department)[department.notna()]
    table = known.groupby("department").agg(lines=("order_id", "size"), demand=("capped", "sum"),
                                            allocated=("allocated", "sum")).reset_index()
    table["fill_rate"] = np.where(table["demand"] > 0, table["allocated"] / table["demand"].where(table["demand"] > 0),
                                  np.nan)
    return table.sort_values("department", kind="stable").reset_index(drop=True)


def _capacity(session: Session, deliveries: pd.DataFrame, depots: pd.DataFrame,
              depot_days: pd.DataFrame) -> pd.DataFrame:
    first = min(v.deliver_from for v in session.vaccines.values())
    last = max(v.deliver_by for v in session.vaccines.values())
    days = [first + dt.timedelta(days=k) for k in range((last - first).days + 1)]
    ids = sorted(depots["depot_id"])
    grid = capacity_grid(depots, depot_days, ids, epoch_day(first), len(days)).astype(float)
    scheduled = deliveries[deliveries["status"] == "scheduled"]
    use = scheduled.groupby(["depot_id", "delivery_date"])["vials"].sum()
    used = np.zeros_like(grid)
    rows, columns = pd.Index(ids), pd.Index(days)
    for (depot, day), vials in use.items():
        if depot in rows and day in columns:
            used[rows.get_loc(depot), columns.get_loc(day)] = vials
    share = np.where(grid > 0, used / np.where(grid > 0, grid, 1), np.nan)
    return pd.DataFrame(share, index=ids, columns=days)


def _pending(deliveries: pd.DataFrame, depots: pd.DataFrame) -> pd.DataFrame:
    pending = deliveries[deliveries["status"] == "pending"].groupby("depot_id")["vials"].sum()
    table = depots.set_index("depot_id").reindex(pending.index)[["wholesaler"]].assign(pending=pending.astype(int))
    return table.reset_index().sort_values(["pending", "depot_id"], ascending=[False, True]).reset_index(drop=True)


def _refusals(lines: pd.DataFrame) -> pd.DataFrame:
    short = lines[lines["reason"] != "ok"]
    table = short.groupby("reason").size().rename("lines").reset_index()
    return table.sort_values(["lines", "reason"], ascending=[False, True]).reset_index(drop=True)
