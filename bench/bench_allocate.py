"""Benchmark of allocate: 1,000,000 order lines of a national session, against a per-line loop.

Run from the project root: `python -m bench.bench_allocate`.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter, defaultdict

import numpy as np
import pandas as pd

from pipeline.domain.allocate import allocate
from pipeline.domain.rules import NAMED_KINDS, Session, Vaccine

LINES, OFFICINES = 1_000_000, 20_500
# Professionals attached to each officine, on average: doctors, occupational doctors, midwives, nurses.
PER_OFFICINE = {"medecin": 5.0, "medecin_travail": 2.0, "sage_femme": 1.0, "infirmier": 4.0}
EFFECTORS = {"pharmacien": 0.15, "infirmier": 0.15, "medecin": 0.45, "sage_femme": 0.10, "medecin_travail": 0.15}


def notice(janssen: str = "fcfs", astrazeneca: str = "fcfs", supply: dict[str, int] | None = None) -> Session:
    """The notice's session (R3, R4, R6); Moderna's supply is a fraction of what is asked."""
    supply = supply or {}
    common = dict(deliver_from=dt.date(2021, 6, 17), deliver_by=dt.date(2021, 6, 25))
    return Session(
        id="bench", timezone="Europe/Paris", opens_at=dt.datetime(2021, 6, 14, 8),
        closes_at=dt.datetime(2021, 6, 15, 23), confirmation_at=dt.datetime(2021, 6, 18, 9),
        vaccines={
            "moderna": Vaccine(label="Moderna", doses_per_vial=10, box_vials=10, supply_vials=supply.get("moderna"),
                               allocation="fcfs", remainders=False, caps={"medecin_travail": {"first": 10}},
                               **common),
            "janssen": Vaccine(label="Janssen", doses_per_vial=5, supply_vials=supply.get("janssen"),
                               allocation=janssen, remainders=True,
                               caps={k: {"first": 10} for k in ("medecin", "pharmacien", "infirmier", "sage_femme")},
                               **common),
            "astrazeneca": Vaccine(label="AstraZeneca", doses_per_vial=10, supply_vials=supply.get("astrazeneca"),
                                   allocation=astrazeneca, remainders=True,
                                   caps={"medecin": {"first": 5, "second": 5}, "pharmacien": {"first": 5, "second": 5},
                                         "infirmier": {"first": 10}, "sage_femme": {"first": 10}}, **common),
        })


def synthetic(lines: int = LINES, officines: int = OFFICINES, seed: int = 2021):
    """(orders, pharmacies, professionals) as the scenario reader gives them: text as `object`,
    `submitted_at` in UTC. About 1% of the lines fail an outright check; caps bite often."""
    rng = np.random.default_rng(seed)
    finess = np.array([f"{i:09d}" for i in 10_000_000 + rng.choice(980_000_000, officines, replace=False)],
                      dtype=object)
    departments = np.array([f"{d:02d}" for d in range(1, 96)], dtype=object)
    pharmacies = pd.DataFrame({"finess": finess, "department": departments[rng.integers(0, 95, officines)]},
                              dtype=object)

    kinds, attached = [], []
    for kind, mean in PER_OFFICINE.items():
        count = int(mean * officines)
        kinds.append(np.full(count, kind, dtype=object))
        attached.append(rng.integers(0, officines, count))
    kinds, attached = np.concatenate(kinds), np.concatenate(attached)
    rpps = np.array([f"{i:011d}" for i in 10_000_000_000 + rng.choice(999_999_999, len(kinds), replace=False)],
                    dtype=object)
    professionals = pd.DataFrame({"rpps": rpps, "kind": kinds, "finess": finess[attached]}, dtype=object)

    effector = rng.choice(np.array(list(EFFECTORS), dtype=object), lines, p=list(EFFECTORS.values()))
    officine = rng.integers(0, officines, lines)
    rpps_of_line = np.full(lines, "", dtype=object)
    for kind in NAMED_KINDS:  # a named line orders for a professional of its kind, through their officine
        rows = np.flatnonzero(effector == kind)
        pool = np.flatnonzero(kinds == kind)
        chosen = pool[rng.integers(0, len(pool), len(rows))]
        rpps_of_line[rows] = rpps[chosen]
        officine[rows] = attached[chosen]
    vaccine = np.where(effector == "medecin_travail", "moderna",
                       rng.choice(np.array(["janssen", "astrazeneca"], dtype=object), lines)).astype(object)
    second = (vaccine == "astrazeneca") & np.isin(effector, ["medecin", "pharmacien"]) & (rng.random(lines) < 0.3)
    vials = np.where(vaccine == "moderna", rng.choice([5, 10, 10, 10, 20], lines), rng.integers(1, 9, lines))
    minutes = rng.integers(-10, 39 * 60 + 10, lines)  # a few minutes either side of the window
    milliseconds = minutes * 60_000 + rng.integers(0, 60_000, lines)
    submitted = pd.Timestamp("2021-06-14T06:00:00Z") + pd.to_timedelta(milliseconds, unit="ms")
    line_finess = finess[officine]
    noise = rng.random(lines)  # about 1% of lines: unknown officine, ineligible vaccine, attached elsewhere
    line_finess[noise < 0.003] = "000000000"
    vaccine[(noise >= 0.003) & (noise < 0.006)] = "moderna"
    elsewhere = (noise >= 0.006) & (noise < 0.01)
    line_finess[elsewhere] = finess[rng.integers(0, officines, int(elsewhere.sum()))]
    orders = pd.DataFrame({
        "order_id": np.array([f"A-{i:07d}" for i in rng.permutation(lines)], dtype=object),
        "submitted_at": submitted, "finess": line_finess, "effector": effector, "rpps": rpps_of_line,
        "vaccine": vaccine, "injection": np.where(second, "second", "first").astype(object),
        "vials": vials.astype(np.int64)})
    text = ["order_id", "finess", "effector", "rpps", "vaccine", "injection"]
    return orders.astype(dict.fromkeys(text, object)), pharmacies, professionals


def per_line_loop(session: Session, orders: pd.DataFrame, pharmacies: pd.DataFrame,
                  professionals: pd.DataFrame) -> dict[str, int]:
    """The straightforward allocator: RULES.md R1–R7, one line at a time in submission order.
    Returns the vials allocated per order id."""
    department = dict(zip(pharmacies["finess"], pharmacies["department"]))
    register = {row.rpps: (row.kind, row.finess) for row in professionals.itertuples()}
    nurses = Counter(professionals.loc[professionals["kind"] == "infirmier", "finess"])
    opens, closes = pd.Timestamp(session.opens), pd.Timestamp(session.closes)
    left = {key: rules.supply_vials for key, rules in session.vaccines.items()}
    sold_out: set[str] = set()
    used: dict[tuple, int] = defaultdict(int)
    pro_rata: dict[str, list[tuple[str, int]]] = defaultdict(list)
    allocated: dict[str, int] = {}
    for line in orders.sort_values(["submitted_at", "order_id"]).itertuples():
        allocated[line.order_id] = 0
        rules = session.vaccines.get(line.vaccine)
        cap = rules.cap(line.effector, line.injection) if rules else None
        named = line.effector in NAMED_KINDS
        if (not opens <= line.submitted_at < closes or line.finess not in department
                or not session.in_zone(department[line.finess]) or cap is None
                or (named and register.get(line.rpps, ("", ""))[0] != line.effector)
                or (named and register[line.rpps][1] != line.finess)):
            continue
        if line.effector == "infirmier":
            cap *= nurses[line.finess]
        beneficiary = (line.rpps if named else line.finess, line.effector, line.vaccine, line.injection)
        box = rules.box_vials
        capped = min(line.vials, max(cap - used[beneficiary], 0)) // box * box
        used[beneficiary] += capped
        supply = left[line.vaccine]
        if capped == 0 or supply is None:
            allocated[line.order_id] = capped
        elif rules.allocation == "pro_rata":
            pro_rata[line.vaccine].append((line.order_id, capped // box))
        elif line.vaccine in sold_out:
            pass
        elif capped <= supply // box * box:
            allocated[line.order_id] = capped
            left[line.vaccine] -= capped
        elif rules.allocation == "fcfs" and rules.remainders:
            allocated[line.order_id] = supply // box * box
            left[line.vaccine] = supply % box
        elif rules.allocation == "fcfs":
            sold_out.add(line.vaccine)
    for key, wanting in pro_rata.items():
        box, total = session.vaccines[key].box_vials, sum(units for _, units in wanting)
        supply_units = min(left[key] // box, total)
        given = [units * supply_units // total for _, units in wanting]
        remainder = [units * supply_units % total for _, units in wanting]
        for i in sorted(range(len(wanting)), key=lambda i: -remainder[i])[:supply_units - sum(given)]:
            given[i] += 1
        for (order_id, _), units in zip(wanting, given):
            allocated[order_id] = units * box
    return allocated


def best_of(runs: int, work):
    times, result = [], None
    for _ in range(runs):
        result = None  # the previous result is freed before the clock starts
        started = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - started)
    return min(times), result


def trace_cost(session, orders, pharmacies, professionals, turns: int = 3) -> tuple[float, float]:
    """Best time without and with the trace (`vialflow explain`), measured in alternation so that
    both see the same machine."""
    plain, traced = [], []
    for _ in range(turns):
        plain.append(best_of(1, lambda: allocate(session, orders, pharmacies, professionals))[0])
        traced.append(best_of(1, lambda: allocate(session, orders, pharmacies, professionals, trace=True))[0])
    return min(plain), min(traced)


def main() -> None:
    started = time.perf_counter()
    orders, pharmacies, professionals = synthetic()
    print(f"{len(orders):,} lines, {len(pharmacies):,} officines, {len(professionals):,} professionals "
          f"(built in {time.perf_counter() - started:.1f} s)")
    # Supplies as a share of what the lines keep after caps and boxes, so that supply bites.
    capped = allocate(notice(), orders, pharmacies, professionals).groupby("vaccine")["capped"].sum()
    print("vials kept after cap and unit: " + ", ".join(f"{key} {int(vials):,}" for key, vials in capped.items()))
    variants = {
        "notice: fcfs, Moderna oversubscribed (60% of demand, no remainders)": notice(
            supply={"moderna": int(capped["moderna"] * 0.6)}),
        "fcfs Moderna + fcfs_fill Janssen + pro_rata AstraZeneca (each 60-70% of demand)": notice(
            janssen="fcfs_fill", astrazeneca="pro_rata",
            supply={"moderna": int(capped["moderna"] * 0.6), "janssen": int(capped["janssen"] * 0.7),
                    "astrazeneca": int(capped["astrazeneca"] * 0.7)}),
    }
    for name, session in variants.items():
        seconds, decisions = best_of(3, lambda: allocate(session, orders, pharmacies, professionals))
        loop_seconds, loop = best_of(1, lambda: per_line_loop(session, orders, pharmacies, professionals))
        agrees = decisions.set_index("order_id")["allocated"].to_dict() == loop
        reasons = decisions["reason"].value_counts()
        print(f"\n{name}")
        print("  lines by reason: " + ", ".join(f"{reason} {count:,}" for reason, count in reasons.items()))
        print(f"  allocate:      {seconds:6.2f} s (best of 3), "
              f"{int(decisions['allocated'].sum()):,} of {int(decisions['requested'].sum()):,} vials allocated")
        print(f"  per-line loop: {loop_seconds:6.2f} s (one run), same allocations: {agrees}")
        print(f"  speed-up:      {loop_seconds / seconds:6.1f}x")
        plain, traced = trace_cost(session, orders, pharmacies, professionals)
        print(f"  with trace:    {traced:6.2f} s against {plain:.2f} s without, in turns: "
              f"{traced / plain:4.2f}x (target at most 1.2x)")


if __name__ == "__main__":
    main()
