"""One depot's delivery plan (R8): the vials of each pool on each day, as many on time as its capacity
allows, with the proof or the search that shows it."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

# Options one depot's exact search may weigh before it keeps the best schedule found so far.
SEARCH_BUDGET = 20_000
SEARCH_DAYS = 400  # longer delivery windows keep the better greedy schedule


class DepotPlan:
    """One depot's plan: the vials of each pool on each day, as many on time as capacity allows.

    Why it is the most the capacity allows (R8):
    - One box size at the depot (every vaccine by the vial, or Moderna alone): earliest deadline
      first, day by day, in whole boxes. Counted in boxes these are unit jobs with release dates
      and deadlines on days of given capacity, for which EDF is optimal (exchange argument: a
      schedule that serves a later deadline first can swap it for the earlier one and lose
      nothing; it is Glover's greedy for convex bipartite matching). It never leaves room unused
      while a box can go, so it is also the earliest schedule.
    - Several box sizes (Moderna's 10 beside vaccines by the vial): EDF can strand a day's last
      vials. Monday 15 vials, Tuesday 10, 10 Janssen vials due Monday and 2 Moderna boxes due
      Tuesday: EDF sends the Janssen on Monday, 5 vials of room stay empty and a box waits (20 on
      time); a box and 5 Janssen on Monday, a box on Tuesday make 25. So:
      1. The better of two greedy schedules (EDF; boxes as late as they can go, then the units by
         EDF, then the boxes moved back to the earliest day with room) is compared with an upper
         bound: for any set A of pools, on-time vials <= the demand of the pools outside A + for
         each day the best fill of its capacity by whole boxes of A's pools open that day. When
         they meet, the greedy is optimal: the usual case (every depot of the examples and the
         benchmark).
      2. Otherwise an exact search over the days, memoised on what remains to deliver: on each
         day it tries every count of boxes of each box pool, the pools by the vial taking the rest
         by EDF (for fixed boxes that is optimal, as above), skips counts that leave room for one
         more box (a box more never lowers what can be delivered), and prunes with the bound. It
         is exact for any box sizes (the tests compare it with a brute force).
      Where it may fall short, `proven` is False: when one depot's search weighs more than
      SEARCH_BUDGET options, or the delivery windows span more than SEARCH_DAYS days (the best
      schedule found is kept). The budget is only reached with box sizes that do not divide one
      another at one depot (5 of 600 random depots with 2 to 6 vaccines in boxes of 1, 2, 3, 5,
      6, 7 or 10 vials), never with the notice's 1, 5 and 10.
    """

    def __init__(self, caps: np.ndarray, lo: list[int], hi: list[int], unit: list[int]):
        self.caps, self.lo, self.hi, self.unit = [int(c) for c in caps], lo, hi, unit
        self.n = len(lo)
        edf = sorted(range(self.n), key=lambda p: (hi[p], -unit[p], lo[p], p))
        self.open = [tuple(p for p in edf if lo[p] <= day <= hi[p]) if cap > 0 else ()
                     for day, cap in enumerate(self.caps)]
        self.proven = True

    def solve(self, demand: list[int]) -> np.ndarray:
        start = self._expire(0, demand)
        if len(set(self.unit)) == 1:
            plan = self._edf(0, start)[1]
        elif len(self.caps) > SEARCH_DAYS:  # the search recurses day by day
            value, plan = max(self._edf(0, start), self._late_boxes(0, start), key=lambda found: found[0])
            self._bound_tables()
            self.proven = value >= self._bound(0, start)
        else:
            self._bound_tables()
            self.memo: dict = {}
            self.work = 0
            plan = self._search(0, start)[1]
        grid = np.zeros((self.n, len(self.caps)), np.int64)
        for day, row in plan:
            grid[:, day] = row
        return grid

    def _expire(self, day: int, rem) -> tuple[int, ...]:
        return tuple(r if self.hi[p] >= day else 0 for p, r in enumerate(rem))

    def _edf(self, day0: int, rem) -> tuple[int, tuple]:
        rem, total, plan = list(rem), 0, []
        for day in range(day0, len(self.caps)):
            left, row = self.caps[day], None
            for p in self.open[day]:
                if rem[p] and left:
                    take = min(rem[p], left - left % self.unit[p])
                    if take:
                        row = row or [0] * self.n
                        row[p] = take
                        rem[p] -= take
                        left -= take
                        total += take
            if row:
                plan.append((day, tuple(row)))
        return total, tuple(plan)

    def _late_boxes(self, day0: int, rem) -> tuple[int, tuple]:
        """Boxes as late as they can go, units by EDF in what is left, then boxes moved to the
        earliest day that still has room (this takes nothing from the units, which had left it)."""
        days = range(day0, len(self.caps))
        if not days:
            return 0, ()
        rem = list(rem)
        grid = {day: [0] * self.n for day in days}
        for day in reversed(days):
            left = self.caps[day]
            for p in sorted(self.open[day], key=lambda p: (-self.lo[p], -self.unit[p], p)):
                if self.unit[p] > 1 and rem[p]:
                    take = min(rem[p], left - left % self.unit[p])
                    grid[day][p] += take
                    rem[p] -= take
                    left -= take
        left = {day: self.caps[day] - sum(grid[day]) for day in days}
        units = [p for p in range(self.n) if self.unit[p] == 1]
        start_units = [rem[p] for p in units]
        self._units_edf(days, grid, left, rem)
        for day in days:
            for p in self.open[day]:
                u = self.unit[p]
                if u == 1:
                    continue
                for later in range(min(self.hi[p], days[-1]), day, -1):
                    if left[day] < u:
                        break
                    move = min(grid[later][p], left[day] - left[day] % u)
                    grid[later][p] -= move
                    grid[day][p] += move
                    left[day] -= move
                    left[later] += move
        # Boxes moved out of a day freed it for the units: place them again from scratch.
        for day in days:
            for p in units:
                left[day] += grid[day][p]
                grid[day][p] = 0
        for p, r in zip(units, start_units):
            rem[p] = r
        self._units_edf(days, grid, left, rem)
        plan = tuple((day, tuple(grid[day])) for day in days if any(grid[day]))
        return sum(sum(row) for _, row in plan), plan

    def _units_edf(self, days, grid, left, rem) -> None:
        for day in days:
            for p in self.open[day]:
                if self.unit[p] == 1 and rem[p] and left[day]:
                    take = min(rem[p], left[day])
                    grid[day][p] += take
                    rem[p] -= take
                    left[day] -= take

    def _bound_tables(self) -> None:
        """reach[A][day]: the most vials the pools of A can fill from `day` on (A a bit mask)."""
        masks = range(1 << self.n) if self.n <= 10 else [(1 << self.n) - 1]
        self.reach, self.others = [], []
        for mask in masks:
            suffix = [0] * (len(self.caps) + 1)
            for day in range(len(self.caps) - 1, -1, -1):
                sizes = tuple(sorted({self.unit[p] for p in self.open[day] if mask >> p & 1}))
                suffix[day] = suffix[day + 1] + _fill(self.caps[day], sizes)
            self.reach.append(suffix)
            self.others.append([p for p in range(self.n) if not mask >> p & 1])

    def _bound(self, day: int, rem) -> int:
        return min(reach[day] + sum(rem[p] for p in others)
                   for reach, others in zip(self.reach, self.others))

    def _search(self, day: int, rem: tuple[int, ...]) -> tuple[int, tuple]:
        """The most vials deliverable from `day` on, and a plan achieving it."""
        key = (day, rem)
        if key in self.memo:
            return self.memo[key]
        value, plan = max(self._edf(day, rem), self._late_boxes(day, rem), key=lambda found: found[0])
        bound = self._bound(day, rem)
        if value < bound:
            for row, today in self._options(day, rem):
                if self.work >= SEARCH_BUDGET:
                    self.proven = False
                    break
                after = self._expire(day + 1, [r - x for r, x in zip(rem, row)])
                if today + self._bound(day + 1, after) <= value:
                    continue
                later, later_plan = self._search(day + 1, after)
                if today + later > value:
                    value = today + later
                    plan = (((day, row),) if today else ()) + later_plan
                    if value >= bound:
                        break
        self.memo[key] = (value, plan)
        return value, plan

    def _options(self, day: int, rem):
        """Each way to fill `day`, most boxes of the earliest-due pools first: a number of boxes
        for each box pool, units by EDF in the rest, except ways leaving room for one more box."""
        if day >= len(self.caps):
            return
        boxes = [p for p in self.open[day] if self.unit[p] > 1 and rem[p]]
        units = [p for p in self.open[day] if self.unit[p] == 1 and rem[p]]
        row = [0] * self.n

        def fill(i: int, left: int):
            if i < len(boxes):
                p, u = boxes[i], self.unit[boxes[i]]
                for count in range(min(rem[p], left) // u, -1, -1):
                    row[p] = count * u
                    yield from fill(i + 1, left - count * u)
                row[p] = 0
                return
            self.work += 1
            full, room = list(row), left
            for p in units:
                full[p] = min(rem[p], room)
                room -= full[p]
            if not any(room >= self.unit[p] and rem[p] - full[p] >= self.unit[p] for p in boxes):
                yield tuple(full), self.caps[day] - room

        yield from fill(0, self.caps[day])


@lru_cache(maxsize=4096)
def _fill(capacity: int, sizes: tuple[int, ...]) -> int:
    """The most of `capacity` that whole boxes of these sizes can fill."""
    if not sizes:
        return 0
    if all(size % sizes[0] == 0 for size in sizes):  # the smallest size reaches every multiple of itself
        return capacity - capacity % sizes[0]
    reach, mask = 1, (1 << (capacity + 1)) - 1
    for size in sizes:
        step = size
        while step <= capacity:  # doubling steps: any count of this size
            reach |= (reach << step) & mask
            step *= 2
    return reach.bit_length() - 1
