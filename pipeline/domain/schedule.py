"""Delivery scheduling (R8, R11): served lines cut into delivery days within each dépôt's capacity.

Pure and vectorised: the lines, the depots' calendar and the session's vaccines come in as frames.
One module, just over 300 lines: the lines' arrays (`_Lines`), the capacity pools (`_Pools`) and the
cut into days share one set of sorted index arrays; one depot's plan, the search, is in `depot.py`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import numpy as np
import pandas as pd

from .calendar import capacity_grid, epoch_day, epoch_days, from_epoch_day
from .depot import DepotPlan
from .rules import Vaccine

__all__ = ["DELIVERY_COLUMNS", "schedule_deliveries"]

DELIVERY_COLUMNS = ["order_id", "finess", "depot_id", "vaccine", "delivery_date", "vials", "status"]
_PENDING = np.iinfo(np.int64).max  # the date key of a pending row: after every real date
_STATUS = np.array(["scheduled", "pending"], dtype=object)


def schedule_deliveries(lines: pd.DataFrame, depots: pd.DataFrame, depot_days: pd.DataFrame,
                        vaccines: Mapping[str, Vaccine], *, start: dt.date | None = None,
                        frozen: pd.DataFrame | None = None) -> pd.DataFrame:
    """Cut each served line into deliveries (R8), keeping what has already left the depot (R11).

    Needs `lines[order_id, finess, depot_id, vaccine, allocated, rank]` (`rank`: submission
    order, lower first), `depots[depot_id, capacity_vials, weekdays]`, `depot_days[depot_id,
    date, capacity_vials]` and, for a reallocation, `frozen[order_id, depot_id, vaccine,
    delivery_date, vials]`: those deliveries keep their day, use its capacity and count toward
    their line; the frozen rows of a line absent from `lines` only use capacity. New deliveries
    are dated strictly after `start` when it is given.

    Returns the columns of `deliveries.csv`, one row per line and day, sorted by order_id then
    date, the `pending` row (no date) last; frozen rows of the lines come back unchanged.
    `attrs["optimal"]` is False only if a depot's exact search ran out of budget (see `DepotPlan`).
    """
    if len(lines) == 0:
        return _frame({column: [] for column in DELIVERY_COLUMNS}, optimal=True)
    given = _Lines(lines, vaccines)
    fixed = _frozen(frozen, given.order_id)
    remaining = given.remaining(fixed)
    pools = _Pools(given, vaccines, start, remaining)
    caps = capacity_grid(depots, depot_days, given.depot_ids, pools.first, pools.n_days)
    _use_capacity(caps, fixed, given.depot_ids, pools.first)
    quotas, optimal = pools.plan(caps)
    line, day, vials = _cut(pools.in_order[remaining[pools.in_order] > 0], remaining, quotas, pools.demand)
    date = np.where(day == pools.n_days, _PENDING, pools.first + day)
    return _frame(_rows(line, date, vials, fixed, given), optimal=optimal)


class _Fixed:
    """Frozen deliveries as arrays: line position (-1 if not a line), depot, vaccine, day, vials."""

    def __init__(self, line, depot, vaccine, day, vials):
        self.line, self.depot, self.vaccine, self.day, self.vials = line, depot, vaccine, day, vials


def _frozen(frozen: pd.DataFrame | None, order_id: np.ndarray) -> _Fixed:
    if frozen is None or len(frozen) == 0:
        empty = np.zeros(0, np.int64)
        return _Fixed(empty, np.zeros(0, object), np.zeros(0, object), empty, empty)
    frozen = frozen[frozen["delivery_date"].notna()]  # a pending row has not left the depot
    return _Fixed(pd.Index(order_id).get_indexer(frozen["order_id"].to_numpy(dtype=object)),
                  frozen["depot_id"].to_numpy(dtype=object), frozen["vaccine"].to_numpy(dtype=object),
                  epoch_days(frozen["delivery_date"]), frozen["vials"].to_numpy(np.int64))


class _Lines:
    """The lines' columns as arrays, checked; depot and vaccine as codes into sorted names."""

    def __init__(self, lines: pd.DataFrame, vaccines: Mapping[str, Vaccine]):
        self.keys = sorted(vaccines)
        self.order_id = lines["order_id"].to_numpy(dtype=object)
        self.finess = lines["finess"].to_numpy(dtype=object)
        given = lines["vaccine"].to_numpy(dtype=object)
        self.vaccine = pd.Index(self.keys).get_indexer(given)
        if (self.vaccine < 0).any():
            at = _first(self.vaccine < 0)
            raise ValueError(f"line {self.order_id[at]} has vaccine {given[at]!r}, not one of the session's")
        self.depot, depot_ids = pd.factorize(lines["depot_id"].to_numpy(dtype=object), sort=True)
        self.depot_ids = [str(depot) for depot in depot_ids]
        self.unit = np.array([vaccines[key].box_vials for key in self.keys], np.int64)[self.vaccine]
        self.allocated = lines["allocated"].to_numpy(np.int64)
        if (self.allocated < 0).any():
            raise ValueError(f"line {self.order_id[_first(self.allocated < 0)]} has a negative allocated")
        self.rank = lines["rank"].to_numpy(np.int64)
        self.id_order, self.id_position = _id_order(self.order_id)

    def remaining(self, fixed: _Fixed) -> np.ndarray:
        """Vials still to schedule: what has left the depot counts toward its line (R11)."""
        mine = fixed.line >= 0
        done = np.bincount(fixed.line[mine], weights=fixed.vials[mine], minlength=len(self.order_id))
        remaining = self.allocated - done.astype(np.int64)
        if (remaining < 0).any():
            at = _first(remaining < 0)
            raise ValueError(f"line {self.order_id[at]} has {int(done[at])} vials already delivered "
                             f"(frozen) but {self.allocated[at]} allocated")
        if (remaining % self.unit).any():
            at = _first(remaining % self.unit != 0)
            raise ValueError(f"line {self.order_id[at]} has {remaining[at]} vials to deliver, not "
                             f"whole boxes of {self.unit[at]}")
        return remaining

    def depot_of(self, line: np.ndarray) -> np.ndarray:
        return np.array(self.depot_ids, dtype=object)[self.depot[line]]

    def vaccine_of(self, line: np.ndarray) -> np.ndarray:
        return np.array(self.keys, dtype=object)[self.vaccine[line]]


def _first(wrong: np.ndarray) -> int:
    return int(np.flatnonzero(wrong)[0])


class _Pools:
    """The lines of a depot whose vaccines share their delivery terms (window, after `start`, and
    box size) form a pool: interchangeable for the capacity, served in submission order."""

    def __init__(self, given: _Lines, vaccines: Mapping[str, Vaccine], start: dt.date | None,
                 remaining: np.ndarray):
        terms = []
        for key in given.keys:
            first = epoch_day(vaccines[key].deliver_from)
            if start is not None:
                first = max(first, epoch_day(start) + 1)
            terms.append((first, epoch_day(vaccines[key].deliver_by), vaccines[key].box_vials))
        self.terms = sorted(set(terms))
        per_depot = len(self.terms)
        pool = given.depot * per_depot + np.array([self.terms.index(t) for t in terms])[given.vaccine]
        rank = given.rank - given.rank.min()
        span = int(rank.max()) + 1
        if span * (int(pool.max()) + 1) < 1 << 62:  # one integer key sorts faster than two
            self.in_order = np.argsort(pool * span + rank)
        else:
            self.in_order = np.lexsort((rank, pool))
        twice = (np.diff(pool[self.in_order]) == 0) & (np.diff(rank[self.in_order]) == 0)
        if twice.any():
            raise ValueError(f"rank {given.rank[self.in_order[int(np.flatnonzero(twice)[0])]]} "
                             "is given to two lines")
        self.demand = np.bincount(pool, weights=remaining, minlength=len(given.depot_ids) * per_depot
                                  ).astype(np.int64)
        wanted = self.demand.reshape(-1, per_depot).any(axis=0)
        live = [t for t, w in zip(self.terms, wanted) if w and t[0] <= t[1]]
        self.first = min((t[0] for t in live), default=0)
        self.n_days = max((t[1] for t in live), default=self.first - 1) - self.first + 1

    def plan(self, caps: np.ndarray) -> tuple[np.ndarray, bool]:
        """Vials of each pool on each day, depot by depot; and whether all are proven optimal."""
        per_depot = len(self.terms)
        quotas = np.zeros((len(self.demand), self.n_days), np.int64)
        optimal = True
        for d in range(caps.shape[0]):
            pools = [d * per_depot + k for k, (first, last, _) in enumerate(self.terms)
                     if self.demand[d * per_depot + k] and first <= last]
            if pools:
                terms = [self.terms[p % per_depot] for p in pools]
                depot = DepotPlan(caps[d], [t[0] - self.first for t in terms], [t[1] - self.first for t in terms],
                               [t[2] for t in terms])
                quotas[pools] = depot.solve([int(self.demand[p]) for p in pools])
                optimal &= depot.proven
        return quotas, optimal


def _use_capacity(caps: np.ndarray, fixed: _Fixed, depot_ids: list[str], first: int) -> None:
    """Frozen deliveries keep their day's capacity (R11), whether their line is still served or not."""
    if len(fixed.vials) == 0 or caps.size == 0:
        return
    row = pd.Index(depot_ids).get_indexer(fixed.depot)
    day = fixed.day - first
    keep = (row >= 0) & (day >= 0) & (day < caps.shape[1])
    used = np.bincount(row[keep] * caps.shape[1] + day[keep], weights=fixed.vials[keep],
                       minlength=caps.size).astype(np.int64)
    np.subtract(caps, used.reshape(caps.shape), out=caps)
    np.maximum(caps, 0, out=caps)


def _id_order(order_id: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The lines in order_id order (code point order, as Python compares strings), and each
    line's position in it."""
    words = _printable_ascii_words(order_id)
    if words is not None:
        by_id = np.argsort(words[0]) if len(words) == 1 else np.lexsort(words[::-1])
        key = np.stack(words, axis=1)[by_id]
        same = (key[1:] == key[:-1]).all(axis=1)
    else:
        text = order_id.astype(str)
        by_id = np.argsort(text, kind="stable")
        same = text[by_id][1:] == text[by_id][:-1]
    if same.any():
        raise ValueError(f"order_id {order_id[by_id[_first(same)]]} is on two lines")
    position = np.empty(len(order_id), np.int64)
    position[by_id] = np.arange(len(order_id))
    return by_id, position


def _printable_ascii_words(text: np.ndarray) -> list[np.ndarray] | None:
    """Printable ASCII ids as integers that sort as the text does, 9 characters to a word in base
    96 (0 past the end, so a prefix comes first); None for other ids. Much faster to sort."""
    try:
        raw = text.astype("S")
    except UnicodeEncodeError:
        return None
    width = raw.dtype.itemsize
    chars = raw.view(np.uint8).reshape(len(raw), width)
    if not (((chars >= 32) & (chars < 127)) | (chars == 0)).all():
        return None
    digits = np.maximum(chars.astype(np.int64) - 31, 0)
    words = []
    for at in range(0, max(width, 1), 9):
        word = np.zeros(len(raw), np.int64)
        for column in range(at, at + 9):
            word = word * 96 + (digits[:, column] if column < width else 0)
        words.append(word)
    return words


def _cut(ordered: np.ndarray, remaining: np.ndarray, quotas: np.ndarray, demand: np.ndarray):
    """Lines (in pool then rank order) laid end to end on one axis of vials, cut by the pools'
    days laid on the same axis: each piece is one line on one day (day n_days = pending).

    Within a pool the days come in date order and the pending rest last, so an earlier line is
    never delivered after a later one, and no later line is on time while an earlier one waits."""
    n_days = quotas.shape[1]
    if len(ordered) == 0:
        return ordered, ordered, ordered
    lengths = remaining[ordered]
    line_start = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    segments = np.concatenate((quotas, (demand - quotas.sum(axis=1))[:, None]), axis=1).ravel()
    segment_day = np.tile(np.arange(n_days + 1), quotas.shape[0])[segments > 0]
    segments = segments[segments > 0]
    segment_start = np.concatenate(([0], np.cumsum(segments)[:-1]))
    cuts = np.sort(np.concatenate((line_start, segment_start)), kind="stable")  # two sorted runs
    cuts = cuts[np.concatenate(([True], cuts[1:] != cuts[:-1]))]
    vials = np.diff(np.append(cuts, lengths.sum()))
    line = ordered[np.searchsorted(line_start, cuts, side="right") - 1]
    day = segment_day[np.searchsorted(segment_start, cuts, side="right") - 1]
    return line, day, vials


def _rows(line, date, vials, fixed: _Fixed, given: _Lines) -> dict:
    """The output rows: new pieces and the frozen rows of the lines, by order_id then date."""
    kept = np.flatnonzero(fixed.line >= 0)
    if len(kept) == 0:
        order = _blocks_in_id_order(line, given.id_order)
        line, date, vials = line[order], date[order], vials[order]
        depot, vaccine = given.depot_of(line), given.vaccine_of(line)
    else:
        source = np.concatenate((kept, np.full(len(line), -1)))  # the frozen row a row comes from
        line = np.concatenate((fixed.line[kept], line))
        date = np.concatenate((fixed.day[kept], date))
        vials = np.concatenate((fixed.vials[kept], vials))
        order = np.lexsort((date, given.id_position[line]))
        line, date, vials, source = line[order], date[order], vials[order], source[order]
        # One row per line and day: a new delivery on a frozen row's day joins it.
        first = np.concatenate(([True], (line[1:] != line[:-1]) | (date[1:] != date[:-1])
                                | (date[1:] == _PENDING)))
        starts = np.flatnonzero(first)
        line, date, source = line[starts], date[starts], source[starts]
        vials = np.add.reduceat(vials, starts)
        depot = np.where(source >= 0, fixed.depot[source], given.depot_of(line))
        vaccine = np.where(source >= 0, fixed.vaccine[source], given.vaccine_of(line))
    pending = date == _PENDING
    return {"order_id": given.order_id[line], "finess": given.finess[line], "depot_id": depot,
            "vaccine": vaccine, "delivery_date": _dates(date, pending), "vials": vials,
            "status": _STATUS[pending.astype(np.intp)]}


def _blocks_in_id_order(line: np.ndarray, id_order: np.ndarray) -> np.ndarray:
    """The rows' order by order_id when each line's rows are together, already in date order:
    the blocks of rows put in the lines' order_id order, without sorting again."""
    if len(line) == 0:
        return np.zeros(0, np.int64)
    starts = np.flatnonzero(np.concatenate(([True], line[1:] != line[:-1])))
    sizes = np.diff(np.append(starts, len(line)))
    block_of = np.full(len(id_order), -1, np.int64)
    block_of[line[starts]] = np.arange(len(starts))
    blocks = block_of[id_order]
    blocks = blocks[blocks >= 0]
    taken = sizes[blocks]
    before = np.cumsum(taken) - taken
    return np.repeat(starts[blocks] - before, taken) + np.arange(len(line))


def _dates(keys: np.ndarray, pending: np.ndarray) -> np.ndarray:
    """Epoch days as datetime.date objects, None where pending."""
    if pending.all():
        return np.full(len(keys), None, dtype=object)
    low, high = int(keys[~pending].min()), int(keys[~pending].max())
    table = np.array([from_epoch_day(low + i) for i in range(high - low + 1)] + [None], dtype=object)
    return table[np.where(pending, high - low + 1, keys - low)]


def _frame(columns: dict, optimal: bool) -> pd.DataFrame:
    dtypes = {"delivery_date": object, "vials": np.int64}
    frame = pd.DataFrame({name: pd.Series(columns[name], dtype=dtypes.get(name, "str"), copy=False)
                          for name in DELIVERY_COLUMNS}, copy=False)
    frame.attrs["optimal"] = optimal
    return frame
