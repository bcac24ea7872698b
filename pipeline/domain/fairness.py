"""How evenly a run shares each vaccine: fill rates by department and by effecteur kind, the share of
officines that got nothing, and the spread across departments (lowest, highest, Gini coefficient).

Over the lines the vaccine's rules let through (not refused outright: window, zone, eligibility...),
each line weighing its capped demand (what caps and whole boxes left of it, R4–R6): a rate is the
vials allocated of that demand, so a policy (R7) is judged on what it could have served.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .allocate import OUTRIGHT

FAIRNESS_KEYS = ("fill_rate_by_department", "fill_rate_by_kind", "officines_unserved_share", "fill_rate_min",
                 "fill_rate_max", "gini")


def fairness(lines: pd.DataFrame, pharmacies: pd.DataFrame, vaccines: list[str]) -> dict[str, dict]:
    """Per vaccine of `vaccines`, FAIRNESS_KEYS. `lines` needs finess, effector, vaccine, allocated,
    capped and reason; `pharmacies` finess and department. A rate is None where there is no demand."""
    department = pharmacies.drop_duplicates("finess").set_index("finess")["department"]
    through = lines[~lines["reason"].isin(OUTRIGHT) & (lines["capped"] > 0)]
    through = through.assign(department=through["finess"].map(department))
    found = {}
    for key in vaccines:
        mine = through[through["vaccine"] == key]
        by_department = _rates(mine[mine["department"].notna()], "department")
        officines = mine.groupby("finess")["allocated"].sum()
        rates = sorted(by_department.values())
        found[key] = {
            "fill_rate_by_department": by_department,
            "fill_rate_by_kind": _rates(mine, "effector"),
            "officines_unserved_share": _round(float((officines == 0).mean())) if len(officines) else None,
            "fill_rate_min": rates[0] if rates else None,
            "fill_rate_max": rates[-1] if rates else None,
            "gini": _round(gini(_exact(mine[mine["department"].notna()], "department"))) if rates else None,
        }
    return found


def gini(values) -> float:
    """The Gini coefficient of non-negative `values`: 0 when all are equal (or all zero), towards 1
    as one holds everything; computed on the sorted values, so any order of them gives the same."""
    x = np.sort(np.asarray(values, dtype=float))
    n, total = len(x), float(x.sum())
    if n == 0 or total <= 0:
        return 0.0
    ranks = np.arange(1, n + 1)
    return float(min(max((2.0 * float((ranks * x).sum()) / (n * total)) - (n + 1) / n, 0.0), 1.0))


def _exact(lines: pd.DataFrame, by: str) -> np.ndarray:
    sums = lines.groupby(by)[["allocated", "capped"]].sum()
    return (sums["allocated"] / sums["capped"]).to_numpy(float)


def _rates(lines: pd.DataFrame, by: str) -> dict[str, float]:
    """Allocated of the capped demand per value of `by`, sorted by that value."""
    sums = lines.groupby(by)[["allocated", "capped"]].sum().sort_index()
    return {str(k): _round(int(a) / int(d)) for k, a, d in zip(sums.index, sums["allocated"], sums["capped"])}


def _round(rate: float) -> float:
    return round(rate, 4)
