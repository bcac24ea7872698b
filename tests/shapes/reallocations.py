"""A reallocation drawn against what a first run did (R10, R11): an effective date, new supplies,
cancelled lines that have not left a depot, depot days opened or closed, a redistribution of vials
delivered a week or more before the effective date."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path

from hypothesis import strategies as st

from .scenarios import Shape


def changes_for(data, shape: Shape, first: dict) -> dict | None:
    """The changes of a reallocation as the contract's changes.toml holds them, or None (no reallocation)."""
    if not data.draw(st.booleans(), label="reallocate"):
        return None
    span = (shape.last_day - shape.first_day).days
    effective = shape.first_day + dt.timedelta(days=data.draw(st.integers(-1, span + 1), label="effective"))
    scheduled = [row for row in first["deliveries"] if row["status"] == "scheduled"]
    gone = [row for row in scheduled if dt.date.fromisoformat(row["delivery_date"]) <= effective]
    gone_vials = Counter()
    for row in gone:
        gone_vials[row["vaccine"]] += int(row["vials"])
    supply = {}
    for vaccine in shape.vaccines:
        if data.draw(st.booleans(), label=f"supply {vaccine.key}?"):
            demand = sum(int(r["requested"]) for r in first["allocations"].values() if r["vaccine"] == vaccine.key)
            wanted = data.draw(st.sampled_from([0, demand // 3, demand * 2 + 5]), label=f"supply {vaccine.key}")
            supply[vaccine.key] = max(wanted, gone_vials[vaccine.key])
    left = sorted(set(first["allocations"]) - {row["order_id"] for row in gone})
    cancel = data.draw(st.lists(st.sampled_from(left), unique=True, max_size=4), label="cancel") if left else []
    depot_days = []
    for depot in shape.depots:
        if data.draw(st.integers(0, 2), label=f"days {depot.depot_id}?") == 0:
            day = effective + dt.timedelta(days=data.draw(st.integers(1, 8), label="day"))
            depot_days.append({"depot_id": depot.depot_id, "date": day.isoformat(),
                               "capacity_vials": data.draw(st.sampled_from([0, 5, 200]), label="capacity")})
    redistribution = []
    week_old = Counter()
    for row in scheduled:
        if dt.date.fromisoformat(row["delivery_date"]) <= effective - dt.timedelta(days=7):
            week_old[row["order_id"]] += int(row["vials"])
    if week_old and shape.professionals and data.draw(st.booleans(), label="redistribute?"):
        order_id = data.draw(st.sampled_from(sorted(week_old)), label="redistributed line")
        redistribution.append({"order_id": order_id,
                               "vials": data.draw(st.integers(1, week_old[order_id]), label="vials"),
                               "to_rpps": data.draw(st.sampled_from([p[0] for p in shape.professionals]), label="to")})
    # R7 as a change: another policy, or remainders switched, for some vaccines.
    allocation = {v.key: data.draw(st.sampled_from(["fcfs", "fcfs_fill", "pro_rata"]), label=f"policy {v.key}")
                  for v in shape.vaccines if data.draw(st.integers(0, 2), label=f"policy {v.key}?") == 0}
    remainders = {v.key: data.draw(st.booleans(), label=f"remainders {v.key}")
                  for v in shape.vaccines if data.draw(st.integers(0, 3), label=f"remainders {v.key}?") == 0}
    return {"effective": effective.isoformat(), "supply": supply, "cancel": cancel, "depot_days": depot_days,
            "redistribution": redistribution, "allocation": allocation, "remainders": remainders}


def write_changes(changes: dict, path: Path) -> Path:
    """`changes` as the contract's changes.toml."""
    lines = [f'effective = "{changes["effective"]}"']
    if changes["supply"]:
        lines.append("supply = { " + ", ".join(f"{k} = {v}" for k, v in changes["supply"].items()) + " }")
    lines.append("cancel = [" + ", ".join(f'"{order_id}"' for order_id in changes["cancel"]) + "]")
    if changes.get("allocation"):
        lines.append("allocation = { " + ", ".join(f'{k} = "{v}"' for k, v in changes["allocation"].items()) + " }")
    if changes.get("remainders"):
        lines.append("remainders = { " + ", ".join(f"{k} = {str(v).lower()}" for k, v in changes["remainders"].items())
                     + " }")
    for day in changes["depot_days"]:
        lines += ["[[depot_days]]", f'depot_id = "{day["depot_id"]}"', f'date = "{day["date"]}"',
                  f'capacity_vials = {day["capacity_vials"]}']
    for item in changes["redistribution"]:
        lines += ["[[redistribution]]", f'order_id = "{item["order_id"]}"', f'vials = {item["vials"]}',
                  f'to_rpps = "{item["to_rpps"]}"']
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
