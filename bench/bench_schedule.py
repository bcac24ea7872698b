"""Benchmark of schedule_deliveries: 1,000,000 lines over 185 depots, against a per-line loop.

Run from the project root: `python -m bench.bench_schedule`.
"""

from __future__ import annotations

import datetime as dt
import time

import numpy as np
import pandas as pd

from pipeline.domain.calendar import parse_weekdays
from pipeline.domain.rules import Vaccine
from pipeline.domain.schedule import schedule_deliveries

LINES, DEPOTS, BASELINE_LINES = 1_000_000, 185, 100_000
WEEKDAYS = ["Mon-Fri", "Mon,Wed,Fri", "Mon-Sat", "Tue,Thu", "Mon-Wed,Fri"]
VACCINES = {  # the notice's three vaccines and a Pfizer in boxes of 5, as in mixed-small
    "moderna": Vaccine(label="Moderna", doses_per_vial=10, box_vials=10,
                       deliver_from=dt.date(2021, 6, 21), deliver_by=dt.date(2021, 7, 2)),
    "janssen": Vaccine(label="Janssen", doses_per_vial=5,
                       deliver_from=dt.date(2021, 6, 17), deliver_by=dt.date(2021, 6, 25)),
    "astrazeneca": Vaccine(label="AstraZeneca", doses_per_vial=10,
                           deliver_from=dt.date(2021, 6, 17), deliver_by=dt.date(2021, 6, 25)),
    "pfizer": Vaccine(label="Pfizer", doses_per_vial=6, box_vials=5,
                      deliver_from=dt.date(2021, 6, 21), deliver_by=dt.date(2021, 6, 25)),
}


def synthetic(lines: int = LINES, depots: int = DEPOTS, seed: int = 2021):
    """Lines, depots and overrides of a national session, capacities tight enough that about a
    tenth of the vials stay pending."""
    rng = np.random.default_rng(seed)
    keys = np.array(["moderna", "janssen", "astrazeneca", "pfizer"], dtype=object)
    vaccine = keys[rng.choice(4, size=lines, p=[0.1, 0.4, 0.4, 0.1])]
    allocated = np.where(vaccine == "moderna", 10,
                         np.where(vaccine == "pfizer", 5 * rng.integers(1, 3, lines), rng.integers(1, 11, lines)))
    depot_ids = np.array([f"D-{i:03d}" for i in range(depots)], dtype=object)
    depot = rng.integers(0, depots, lines)
    frame = pd.DataFrame({
        "order_id": [f"A-{i:07d}" for i in rng.permutation(lines)],
        "finess": [f"{i:09d}" for i in rng.integers(10_000_000, 990_000_000, lines)],
        "depot_id": depot_ids[depot], "vaccine": vaccine, "allocated": allocated,
        "rank": rng.permutation(lines)})
    weekdays = rng.choice(WEEKDAYS, depots)
    open_days = np.array([sum(1 for k in range(16) if (3 + k) % 7 in parse_weekdays(w)) for w in weekdays])
    demand = np.bincount(depot, weights=allocated, minlength=depots)
    capacity = (demand * rng.uniform(1.0, 1.6, depots) / open_days).astype(np.int64) + 1
    depots_frame = pd.DataFrame({"depot_id": depot_ids, "capacity_vials": capacity, "weekdays": weekdays})
    closed = rng.choice(depots, 20, replace=False)
    depot_days = pd.DataFrame({
        "depot_id": depot_ids[closed],
        "date": [dt.date(2021, 6, 17) + dt.timedelta(days=int(k)) for k in rng.integers(0, 16, 20)],
        "capacity_vials": np.where(rng.random(20) < 0.5, 0, capacity[closed] // 2)})
    return frame, depots_frame, depot_days


def per_line_loop(lines: pd.DataFrame, depots: pd.DataFrame, depot_days: pd.DataFrame) -> int:
    """The straightforward scheduler: each line in submission order takes the first days of its
    window with room left, in whole boxes. Returns the vials delivered on time."""
    weekdays = {row.depot_id: parse_weekdays(row.weekdays) for row in depots.itertuples()}
    base = dict(zip(depots["depot_id"], depots["capacity_vials"]))
    override = {(row.depot_id, row.date): row.capacity_vials for row in depot_days.itertuples()}
    left: dict = {}
    on_time = 0
    for line in lines.sort_values("rank").itertuples():
        rule = VACCINES[line.vaccine]
        need, day = line.allocated, rule.deliver_from
        while need and day <= rule.deliver_by:
            key = (line.depot_id, day)
            if key not in left:
                left[key] = override.get(key, base[line.depot_id] if day.weekday() in weekdays[line.depot_id] else 0)
            take = min(need, left[key] - left[key] % rule.box_vials)
            need -= take
            left[key] -= take
            on_time += take
            day += dt.timedelta(days=1)
    return on_time


def best_of(runs: int, work):
    """The best wall-clock and processor times of a few runs, and the last result."""
    walls, cpus, result = [], [], None
    for _ in range(runs):
        wall, cpu = time.perf_counter(), time.process_time()
        result = work()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return min(walls), min(cpus), result


def main() -> None:
    lines, depots, depot_days = synthetic()
    print(f"{len(lines):,} lines, {len(depots)} depots, {len(depot_days)} overrides")
    seconds, cpu, schedule = best_of(3, lambda: schedule_deliveries(lines, depots, depot_days, VACCINES))
    on_time = int(schedule.loc[schedule["status"] == "scheduled", "vials"].sum())
    print(f"schedule_deliveries: {seconds:.2f} s wall, {cpu:.2f} s processor (best of 3), "
          f"{len(schedule):,} rows, {on_time:,} of {int(lines['allocated'].sum()):,} vials on time, "
          f"optimal proven: {schedule.attrs['optimal']}")
    # Depots are independent: run the loop on the lines of a tenth of them and scale its time.
    subset = lines[lines["depot_id"] < f"D-{DEPOTS // 10:03d}"]
    baseline_seconds, _, baseline_on_time = best_of(1, lambda: per_line_loop(subset, depots, depot_days))
    scaled = baseline_seconds * len(lines) / len(subset)
    subset_on_time = int(schedule.loc[schedule["depot_id"].isin(subset["depot_id"].unique())
                                      & (schedule["status"] == "scheduled"), "vials"].sum())
    print(f"per-line loop: {baseline_seconds:.2f} s on {len(subset):,} lines, {scaled:.1f} s scaled to "
          f"{len(lines):,}; on those depots it delivers {baseline_on_time:,} vials on time, "
          f"schedule_deliveries {subset_on_time:,}")
    print(f"ratio (loop / schedule_deliveries, wall): {scaled / seconds:.1f}x")


if __name__ == "__main__":
    main()
