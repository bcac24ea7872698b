"""The allocation core (R1–R7, R12 zone): one decision per order line, pure and vectorised.

No I/O, no clock: the session's rules, the registers and the orders come in as arguments.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from .rules import KINDS, NAMED_KINDS, INJECTIONS, Session, Vaccine
from .vocabulary import Reason, Status

# Reason codes of CONTRACT.md, the vocabulary's in its order: ok, then cap, unit and supply, which apply in
# turn (the last that reduced the line names it), then the outright refusals in the order they are
# checked (a line gets the first that fails). Decisions are computed as positions in these tuples.
REASONS = tuple(reason.value for reason in Reason)
OK, CAP, UNIT, SUPPLY = (REASONS.index(r) for r in (Reason.OK, Reason.CAP, Reason.UNIT, Reason.SUPPLY))
OUTRIGHT = REASONS[SUPPLY + 1:]
STATUSES = (Status.SERVED.value, Status.REFUSED.value, Status.PARTIAL.value)
_CODE = {name: code for code, name in enumerate(REASONS)}

# What `allocate(..., trace=True)` adds: each line's decision step by step (see `allocate`);
# missing (NA) where a step did not apply. `after_unit` is `capped`.
TRACE_COLUMNS = ["cap", "nurses", "cap_used_before", "after_cap", "supply_before", "pro_rata_share"]

# The columns of allocations.csv (CONTRACT.md), in their order.
ALLOCATION_COLUMNS = ["order_id", "finess", "effector", "rpps", "vaccine", "injection",
                    "requested", "allocated", "status", "reason"]


def submission_positions(orders: pd.DataFrame) -> np.ndarray:
    """Row positions of `orders` in submission order: `submitted_at`, then `order_id`."""
    instants = pd.DatetimeIndex(pd.to_datetime(orders["submitted_at"], utc=True)).asi8
    order = np.argsort(instants)  # not stable: lines sharing an instant are put in order below
    # Sorting a million order ids as text takes seconds: only lines sharing an instant need them.
    same = instants[order][1:] == instants[order][:-1]
    tied = np.flatnonzero(np.append(same, False) | np.insert(same, 0, False))
    if len(tied):
        ties = pd.DataFrame({"at": instants[order[tied]], "order_id": orders["order_id"].to_numpy()[order[tied]],
                             "position": order[tied]})
        order[tied] = ties.sort_values(["at", "order_id", "position"])["position"].to_numpy()
    return order


def allocate(session: Session, orders: pd.DataFrame, pharmacies: pd.DataFrame,
             professionals: pd.DataFrame, cancelled: Iterable[str] = (),
             supply: dict[str, int] | None = None, trace: bool = False,
             floors: dict[str, int] | None = None) -> pd.DataFrame:
    """Decide every order line.

    Needs `orders[order_id, submitted_at (UTC), finess, effector, rpps, vaccine, injection,
    vials]`, `pharmacies[finess, department]`, `professionals[rpps, kind, finess]`.
    `supply` overrides the session's supply per vaccine (R11); `floors` (by order_id) the vials a line
    keeps whatever the policy (R11: received by the effective date), served first. Returns the columns of
    `allocations.csv` plus `submitted_at`, `rank` (submission order) and `capped` (vials kept
    after cap and unit, before supply), sorted by officine then submission order.

    With `trace`, also each line's decision as `vialflow explain` tells it (TRACE_COLUMNS): the cap
    that applied (after R5's nurse pool) and the attached nurses it counted, what earlier lines of
    the beneficiary kept of it, the vials after the cap, the vials left of the vaccine's supply when
    the line's turn came and its `pro_rata` share. They are arrays the decision computes anyway;
    only the supply left is extra work, one cumulative sum per limited vaccine.
    """
    # Text is looked up in the input's row order; only the resulting integers are put in
    # submission order (`[order]`), which is far cheaper than reordering text.
    order = submission_positions(orders)
    n = len(order)
    kind = _positions(orders["effector"], KINDS)
    named = np.isin(kind, [KINDS.index(k) for k in NAMED_KINDS])
    submitted = orders["submitted_at"]
    outside_window = ((submitted < pd.Timestamp(session.opens))
                      | (submitted >= pd.Timestamp(session.closes))).to_numpy()

    # Registers are read by position; position -1 (not found) lands on a trailing sentinel.
    # Only named lines (R2) look up their professional; attachment compares officine positions.
    register = pd.Index(pharmacies["finess"].to_numpy(object), dtype=object)  # built once, read three times
    pharmacy_at = _positions(orders["finess"], register)
    professional_at = np.full(n, -1, np.int64)
    professional_at[named] = _positions(orders["rpps"], professionals["rpps"], named)
    attached_to = np.append(_positions(professionals["finess"], register), -1)
    attached_elsewhere = named & (attached_to[professional_at] != pharmacy_at)

    vaccine = _positions(orders["vaccine"], list(session.vaccines))[order]
    kind, named, injection = kind[order], named[order], _positions(orders["injection"], INJECTIONS)[order]
    requested = orders["vials"].to_numpy(np.int64)[order]
    pharmacy_at, professional_at = pharmacy_at[order], professional_at[order]
    attached_elsewhere = attached_elsewhere[order]
    known_pharmacy = pharmacy_at >= 0
    departments = _with_sentinel(pharmacies["department"])
    in_zone = np.ones(n, bool) if session.zone == "national" else np.isin(
        departments, list(session.zone))[pharmacy_at]
    registered_kind = np.append(_positions(professionals["kind"], KINDS), -1)
    known_professional = (professional_at >= 0) & (registered_kind[professional_at] == kind)

    caps = _cap_table(session.vaccines)
    base_cap = caps[vaccine, kind, injection]  # -1: not open (R3)
    box = np.array([v.box_vials for v in session.vaccines.values()], np.int64)[vaccine]

    code = np.full(n, -1, np.int64)  # -1: still in the running

    def refuse(mask: np.ndarray, reason: str) -> None:
        code[(code < 0) & mask] = _CODE[reason]

    if cancelled := list(cancelled):
        refuse(orders["order_id"].isin(cancelled).to_numpy()[order], "cancelled")
    refuse(outside_window[order], "window")
    refuse(~known_pharmacy, "unknown_pharmacy")
    refuse(~in_zone, "zone")
    refuse(base_cap < 0, "eligibility")
    refuse(named & ~known_professional, "unknown_professional")
    refuse(named & attached_elsewhere, "not_attached")
    running = code < 0

    # R4/R5: the beneficiary's cap, consumed in submission order by what each line keeps
    # after cap and unit (R6). With the cap rounded down to whole units, what a line keeps is
    # the step of min(cumulative rounded requests, cap).
    nurses = np.append(_nurse_pool(professionals, pharmacies), 0)[pharmacy_at]
    cap = np.where(kind == KINDS.index("infirmier"), base_cap * nurses, base_cap)
    # A line still running has a known officine, and a known professional when named: their
    # register positions identify the beneficiary.
    beneficiary_id = np.where(named, professional_at, len(professionals) + pharmacy_at)
    entitlement = (vaccine * (len(KINDS) + 1) + kind) * (len(INJECTIONS) + 1) + injection
    beneficiary = beneficiary_id * caps.size + entitlement
    rounded = np.where(running, requested // box * box, 0)
    unit_cap = cap // box * box
    cumulative = pd.Series(rounded).groupby(beneficiary, sort=False).cumsum().to_numpy()
    consumed_before = np.minimum(cumulative - rounded, unit_cap)
    after_cap = np.where(running, np.minimum(requested, np.maximum(cap - consumed_before, 0)), 0)
    capped = after_cap // box * box

    # R7: supply, per vaccine, in submission order, in whole units; what a line must keep (R11) first.
    allocated = capped.copy()
    kept_before = (orders["order_id"].map(floors).fillna(0).to_numpy(np.int64)[order] if floors
                   else np.zeros(n, np.int64))
    supply_before = np.full(n, -1, np.int64)  # -1: unlimited, or refused before supply
    share = np.full(n, np.nan)  # the exact pro_rata share, in vials, where it applied
    for index, (key, rules) in enumerate(session.vaccines.items()):
        limit = (supply or {}).get(key, rules.supply_vials)
        if limit is None:
            continue
        positions = np.flatnonzero((vaccine == index) & (capped > 0))
        units = capped[positions] // rules.box_vials
        low = np.minimum(kept_before[positions] // rules.box_vials, units)
        left = max(limit // rules.box_vials - int(low.sum()), 0)
        allocated[positions] = (low + serve(units - low, left, rules)) * rules.box_vials
        if trace:
            served = allocated[positions]
            supply_before[positions] = limit - (np.cumsum(served) - served)
            rest = units - low
            if rules.allocation == "pro_rata" and rest.sum() > left:
                share[positions] = (low + rest * left / rest.sum()) * rules.box_vials

    reason = np.where(allocated < capped, SUPPLY,
                      np.where(capped < after_cap, UNIT, np.where(after_cap < requested, CAP, OK)))
    code = np.where(running, reason, code)
    allocated = np.where(running, allocated, 0)
    status = np.where(allocated == requested, 0, np.where(allocated == 0, 1, 2))

    # By officine, then submission order (the rank; the sort is stable). The officines' FINESS
    # are sorted once, from the register plus the few unknown ones, rather than once per line.
    finess = orders["finess"].to_numpy(object)
    unknown = finess[order[pharmacy_at < 0]]
    officines = register.append(pd.Index(unknown, dtype=object)).unique().sort_values()
    officine_rank = np.append(officines.get_indexer(register), -1)[pharmacy_at]
    officine_rank[pharmacy_at < 0] = officines.get_indexer(unknown)
    by_officine = _stable_argsort(officine_rank)
    rows = order[by_officine]
    # Text columns are rebuilt from the few distinct values they hold (officines, kinds, vaccines,
    # injections, the register's RPPS): reading a small table is far cheaper than moving a
    # million separate strings. Only order ids, all distinct, are taken from the input.
    rpps = _with_sentinel(professionals["rpps"])[professional_at[by_officine]]
    unnamed = professional_at[by_officine] < 0  # mostly empty text, one shared object
    rpps[unnamed] = orders["rpps"].to_numpy(object)[rows[unnamed]]
    decided = pd.DataFrame({
        "order_id": _text(orders["order_id"].to_numpy(object)[rows]),
        "finess": _text(officines.to_numpy(object)[officine_rank[by_officine]]),
        "effector": _text(_values(orders["effector"], KINDS, kind, by_officine, rows)),
        "rpps": _text(rpps),
        "vaccine": _text(_values(orders["vaccine"], list(session.vaccines), vaccine, by_officine, rows)),
        "injection": _text(_values(orders["injection"], INJECTIONS, injection, by_officine, rows)),
        "requested": requested[by_officine], "allocated": allocated[by_officine],
        "status": _text(_STATUS_TEXT[status[by_officine]]), "reason": _text(_REASON_TEXT[code[by_officine]]),
        "submitted_at": submitted.take(rows).reset_index(drop=True), "rank": by_officine,
        "capped": capped[by_officine]}, copy=False)
    if not trace:
        return decided
    kept = running[by_officine]  # a line refused outright has no cap, nor anything after it
    nurse_line = kept & (kind[by_officine] == KINDS.index("infirmier"))
    # Set in place: `assign` would copy the million-row frame first.
    traced = {"cap": _maybe(cap[by_officine], kept), "nurses": _maybe(nurses[by_officine], nurse_line),
              "cap_used_before": _maybe(consumed_before[by_officine], kept),
              "after_cap": _maybe(after_cap[by_officine], kept),
              "supply_before": _maybe(supply_before[by_officine], kept & (supply_before[by_officine] >= 0)),
              "pro_rata_share": share[by_officine]}
    for name in TRACE_COLUMNS:
        decided[name] = traced[name]
    return decided


_STATUS_TEXT = np.asarray(STATUSES, dtype=object)
_REASON_TEXT = np.asarray(REASONS, dtype=object)


def serve(units: np.ndarray, supply: int, rules: Vaccine) -> np.ndarray:
    """Units served to each line, in submission order, out of `supply` units (R7)."""
    if units.sum() <= supply:
        return units
    if rules.allocation == "pro_rata":
        return _pro_rata(units, supply)
    if rules.allocation == "fcfs_fill":
        return _fcfs_fill(units, supply)
    cumulative = np.cumsum(units)
    if rules.remainders:
        return np.minimum(cumulative, supply) - np.minimum(cumulative - units, supply)
    # No remainders: the first line that does not fit sells the session out.
    return np.where(np.arange(len(units)) < np.searchsorted(cumulative, supply, side="right"), units, 0)


def _fcfs_fill(units: np.ndarray, supply: int) -> np.ndarray:
    # Sequential by nature (whether a line fits depends on every earlier one); a plain loop
    # over Python ints is the fastest honest form.
    served = []
    left = supply
    for wanted in units.tolist():
        take = wanted if wanted <= left else 0
        left -= take
        served.append(take)
    return np.array(served, np.int64)


def _pro_rata(units: np.ndarray, supply: int) -> np.ndarray:
    # Exact integer shares: floor(supply * u / total), then one unit each to the largest
    # remainders, ties in submission order (a stable sort keeps it).
    total = int(units.sum())
    shares = units.astype(object) * supply if supply * int(units.max()) >= 2**62 else units * supply
    floor = np.asarray(shares // total, np.int64)
    remainder = np.asarray(shares % total, np.int64)
    left = supply - int(floor.sum())
    extra = np.argsort(-remainder, kind="stable")[:left]
    floor[extra] += 1
    return floor


def _positions(values: pd.Series, keys, where: np.ndarray | None = None) -> np.ndarray:
    """Position of each value (of the rows `where`, if given) among `keys`; -1 when it is not one of them."""
    index = keys if isinstance(keys, pd.Index) else pd.Index(np.asarray(keys, dtype=object), dtype=object)
    text = values.to_numpy(object)
    return index.get_indexer(text if where is None else text[where]).astype(np.int64)


def _values(column: pd.Series, keys, codes: np.ndarray, by_officine: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The column's text in output order, from `keys` by code; from the input if a value is not a key."""
    codes = codes[by_officine]
    if (codes < 0).any():
        return column.to_numpy(object)[rows]
    return np.asarray(keys, dtype=object)[codes]


def _text(values: np.ndarray) -> pd.Series:
    """Text as the scenario reader gives it (`object`), without pandas inferring a string dtype."""
    return pd.Series(values, dtype=object, copy=False)


def _stable_argsort(keys: np.ndarray) -> np.ndarray:
    """`np.argsort(keys, kind="stable")`; keys that fit 16 bits are sorted by radix, in linear time."""
    if len(keys) and 0 <= keys.min() and keys.max() < 2**16:
        keys = keys.astype(np.uint16)
    return np.argsort(keys, kind="stable")


def _maybe(values: np.ndarray, present: np.ndarray) -> pd.arrays.IntegerArray:
    """Integers, missing (NA) where not `present`."""
    return pd.arrays.IntegerArray(values.astype(np.int64), ~present)


def _with_sentinel(column: pd.Series) -> np.ndarray:
    return np.append(column.to_numpy(object), None)


def _cap_table(vaccines: dict[str, Vaccine]) -> np.ndarray:
    """caps[vaccine, kind, injection] in vials; -1 where not open (R3). A trailing slot absorbs
    unknown codes (-1) so that an unknown key never indexes a real cap."""
    table = np.full((len(vaccines) + 1, len(KINDS) + 1, len(INJECTIONS) + 1), -1, np.int64)
    for v, rules in enumerate(vaccines.values()):
        for k, kind in enumerate(KINDS):
            for i, injection in enumerate(INJECTIONS):
                cap = rules.cap(kind, injection)
                if cap is not None:
                    table[v, k, i] = cap
    return table


def _nurse_pool(professionals: pd.DataFrame, pharmacies: pd.DataFrame) -> np.ndarray:
    """Number of nurses attached to each officine, by the officine's position (R5)."""
    nurses = professionals.loc[professionals["kind"] == "infirmier", "finess"].value_counts()
    return nurses.reindex(pharmacies["finess"], fill_value=0).to_numpy(np.int64)
