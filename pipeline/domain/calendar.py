"""The dépôts' delivery calendar (R8): delivery weekdays, one-day overrides, capacity per day."""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import pandas as pd

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_DAY = {name.lower(): number for number, name in enumerate(WEEKDAYS)}
_EPOCH = dt.date(1970, 1, 1)


def parse_weekdays(text: str) -> tuple[int, ...]:
    """'Mon-Fri' or 'Mon,Wed,Fri' (also ranges mixed with commas, e.g. 'Mon-Wed,Sat') -> sorted
    weekday numbers (Mon=0). Raises ValueError with a clear one-sentence message on bad text."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"bad weekdays {text!r}: expected day names such as 'Mon-Fri' or 'Mon,Wed,Fri'")
    days: set[int] = set()
    for part in text.split(","):
        ends = [_weekday(name, text) for name in re.split(r"\s*-\s*", part.strip())]
        if len(ends) > 2:
            raise ValueError(f"bad weekdays {text!r}: {part.strip()!r} is not one day nor a range like 'Mon-Fri'")
        if ends[0] > ends[-1]:
            raise ValueError(f"bad weekdays {text!r}: the range {part.strip()!r} runs backwards "
                             "(write it from Mon to Sun, e.g. 'Mon,Sat-Sun')")
        days.update(range(ends[0], ends[-1] + 1))
    return tuple(sorted(days))


def _weekday(name: str, text: str) -> int:
    try:
        return _DAY[name.strip().lower()]
    except KeyError:
        raise ValueError(f"bad weekdays {text!r}: {name.strip()!r} is not one of "
                         f"{', '.join(WEEKDAYS)}") from None


def epoch_days(dates: pd.Series) -> np.ndarray:
    """Dates (datetime.date, Timestamp or ISO text) as int64 days since 1970-01-01."""
    if len(dates) == 0:
        return np.zeros(0, np.int64)
    return pd.to_datetime(pd.Series(dates, copy=False)).to_numpy("datetime64[D]").astype(np.int64)


def epoch_day(date: dt.date) -> int:
    return (date - _EPOCH).days


def from_epoch_day(day: int) -> dt.date:
    return _EPOCH + dt.timedelta(days=int(day))


def capacity_grid(depots: pd.DataFrame, depot_days: pd.DataFrame, depot_ids: list[str],
                  first: int, n_days: int) -> np.ndarray:
    """Vials each of `depot_ids` can deliver on each day `first`..`first + n_days - 1` (epoch days).

    Needs `depots[depot_id, capacity_vials, weekdays]` and `depot_days[depot_id, date,
    capacity_vials]`: a depot delivers its capacity on its weekdays; an override sets one day's
    capacity whatever its weekday (0 closes it).
    """
    if depots["depot_id"].duplicated().any():
        duplicate = depots.loc[depots["depot_id"].duplicated(), "depot_id"].iloc[0]
        raise ValueError(f"depot {duplicate!r} appears twice in depots")
    at = pd.Index(depots["depot_id"]).get_indexer(depot_ids)
    if (at < 0).any():
        raise ValueError(f"depot {depot_ids[int(np.flatnonzero(at < 0)[0])]!r} of a line is not in depots")
    grid = np.zeros((len(depot_ids), n_days), np.int64)
    # 1970-01-01 was a Thursday (weekday 3).
    weekday = (np.arange(first, first + n_days) + 3) % 7
    for row, position in enumerate(at):
        depot = depots.iloc[position]
        try:
            open_days = parse_weekdays(depot["weekdays"])
        except ValueError as error:
            raise ValueError(f"depot {depot['depot_id']!r}: {error}") from None
        capacity = int(depot["capacity_vials"])
        if capacity < 0:
            raise ValueError(f"depot {depot['depot_id']!r} has a negative capacity_vials ({capacity})")
        grid[row, np.isin(weekday, open_days)] = capacity
    if len(depot_days):
        rows = pd.Index(depot_ids).get_indexer(depot_days["depot_id"])
        days = epoch_days(depot_days["date"]) - first
        twice = pd.DataFrame({"depot": depot_days["depot_id"].to_numpy(), "day": days}).duplicated()
        if twice.any():
            row = depot_days.iloc[int(np.flatnonzero(twice)[0])]
            raise ValueError(f"depot_days sets the capacity of {row['depot_id']!r} on {row['date']} twice")
        values = depot_days["capacity_vials"].to_numpy(np.int64)
        if (values < 0).any():
            raise ValueError("depot_days has a negative capacity_vials")
        keep = (rows >= 0) & (days >= 0) & (days < n_days)
        grid[rows[keep], days[keep]] = values[keep]
    return grid
