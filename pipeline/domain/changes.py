"""A reallocation request (R10, R11) as data: the changes model and how versions accumulate."""

from __future__ import annotations

import datetime as dt
import json

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from .identifiers import Count, Identifier, PositiveCount, Rpps
from .rules import Policy, Session


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
    # R7 as a change: a vaccine's policy and whether the line crossing its supply gets what is left.
    allocation: dict[Identifier, Policy] = Field(default_factory=dict, max_length=100)
    remainders: dict[Identifier, StrictBool] = Field(default_factory=dict, max_length=100)


class RunChanges(_Frozen):
    """The changes a run version was made with (`runs.changes`): every request up to its own, merged.
    The first version, made at the session's close, has none (`effective` None)."""

    effective: dt.date | None = None
    supply: dict[Identifier, Count] = Field(default_factory=dict)
    cancel: tuple[Identifier, ...] = ()
    depot_days: tuple[DepotDay, ...] = ()
    redistribution: tuple[Redistribution, ...] = ()
    allocation: dict[Identifier, Policy] = Field(default_factory=dict)
    remainders: dict[Identifier, StrictBool] = Field(default_factory=dict)

    def stored(self) -> dict:
        """As the database keeps it (and a run's input hash reads it): plain JSON values, {} for none.
        The policies only when some are changed, so that the hash of a version without them is as it was."""
        if self.effective is None and self == RunChanges():
            return {}
        policies = {name: dict(getattr(self, name)) for name in ("allocation", "remainders") if getattr(self, name)}
        return {"effective": None if self.effective is None else self.effective.isoformat(),
                "supply": dict(self.supply), "cancel": list(self.cancel),
                "depot_days": [json.loads(day.model_dump_json()) for day in self.depot_days],
                "redistribution": [json.loads(item.model_dump_json()) for item in self.redistribution]} | policies

    def applied_to(self, session: Session) -> Session:
        """The session's rules under these changes' policies (R7): each vaccine's `allocation` and
        `remainders` as the latest request set them."""
        if not self.allocation and not self.remainders:
            return session
        vaccines = {key: rules.model_copy(update={
            **({"allocation": self.allocation[key]} if key in self.allocation else {}),
            **({"remainders": self.remainders[key]} if key in self.remainders else {})})
            for key, rules in session.vaccines.items()}
        return session.model_copy(update={"vaccines": vaccines})

    def added_since(self, before: "RunChanges") -> tuple[Redistribution, ...]:
        """The redistributions (R10) this version adds to `before`'s."""
        return self.redistribution[len(before.redistribution):]


def merged(earlier: RunChanges, changes: Changes) -> RunChanges:
    """The cumulative changes of a new version: this request on top of every earlier one (supplies by
    vaccine, policies by vaccine and depot days by depot and date, the later wins; cancellations and
    redistributions added)."""
    days = {(day.depot_id, day.date): day for day in (*earlier.depot_days, *changes.depot_days)}
    return RunChanges(effective=changes.effective, supply=dict(sorted({**earlier.supply, **changes.supply}.items())),
                      cancel=tuple(sorted(set(earlier.cancel) | set(changes.cancel))),
                      depot_days=tuple(days[key] for key in sorted(days)),
                      redistribution=earlier.redistribution + changes.redistribution,
                      allocation=dict(sorted({**earlier.allocation, **changes.allocation}.items())),
                      remainders=dict(sorted({**earlier.remainders, **changes.remainders}.items())))
