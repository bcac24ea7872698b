"""A reallocation request (R10, R11) as data: the changes model and how versions accumulate."""

from __future__ import annotations

import datetime as dt
import json

from pydantic import BaseModel, ConfigDict, Field

from .identifiers import Count, Identifier, PositiveCount, Rpps


# Lists an operator writes by hand, bounded so that a runaway file is one error, not a query of
# 300,000 values (and every id fits SQLite's limit of 32,766 values a statement).
LONGEST_LIST = 10_000


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DepotDay(_Frozen):
    depot_id: Identifier
    date: dt.date
    capacity_vials: Count


class Redistribution(_Frozen):
    order_id: Identifier
    vials: PositiveCount
    to_rpps: Rpps


class Changes(_Frozen):
    """A changes file (CONTRACT.md, R11)."""

    effective: dt.date
    supply: dict[Identifier, Count] = Field(default_factory=dict, max_length=100)
    cancel: tuple[Identifier, ...] = Field(default=(), max_length=LONGEST_LIST)
    depot_days: tuple[DepotDay, ...] = Field(default=(), max_length=LONGEST_LIST)
    redistribution: tuple[Redistribution, ...] = Field(default=(), max_length=LONGEST_LIST)


def merged(earlier: dict, changes: Changes) -> dict:
    """The cumulative changes of a new version: this request on top of every earlier one."""
    supply = {**earlier.get("supply", {}), **changes.supply}
    cancel = sorted(set(earlier.get("cancel", [])) | set(changes.cancel))
    days = {(d["depot_id"], d["date"]): d for d in earlier.get("depot_days", [])}
    for day in changes.depot_days:
        days[(day.depot_id, day.date.isoformat())] = json.loads(day.model_dump_json())
    redistribution = earlier.get("redistribution", []) + [json.loads(r.model_dump_json()) for r in changes.redistribution]
    return {"effective": changes.effective.isoformat(), "supply": dict(sorted(supply.items())), "cancel": cancel,
            "depot_days": [days[k] for k in sorted(days)], "redistribution": redistribution}
