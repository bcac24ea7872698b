"""Synthetic national scenario (CONTRACT.md's folder) from a seed: registers, depots and orders of one session.

Every draw comes from numpy Generators seeded from `seed`, so the same seed and sizes give the same bytes.
The draws themselves are in `registers` and `orders`; this module seeds them in a fixed order and writes the files.
"""

from __future__ import annotations

import csv
import tomllib
from pathlib import Path

import numpy as np

from pipeline.adapters.files.scenario import HEADERS

from .france import DEPARTMENTS
from .orders import order_lines, order_rows, supply_and_demand, with_supply
from .registers import capacities, depot_days, depots as draw_depots, officines as draw_officines, professionals, serve

DEFAULT_SESSION = Path(__file__).resolve().parents[2] / "fixtures" / "2021-06-14" / "session.toml"


def generate_scenario(out: Path, *, seed: int = 1, pharmacies: int = 20_500, depots: int = 185,
                      session_toml: Path | None = None, bad_rows: int = 8) -> dict:
    """Write a scenario folder to `out` (the session file, registers, depots and orders) and return its counts."""
    if pharmacies < 1 or depots < 1 or bad_rows < 0:
        raise ValueError("pharmacies and depots must be positive, bad_rows not negative")
    out = Path(out)
    text = Path(session_toml or DEFAULT_SESSION).read_text(encoding="utf-8")
    session = tomllib.loads(text)
    # one independent stream per part, so a change in one part leaves the others' draws alone
    rng = dict(zip(("officines", "depots", "professionals", "orders", "supply", "days", "rows"),
                   (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(7))))
    codes = np.array([d[0] for d in DEPARTMENTS])
    zones = np.array([d[1] for d in DEPARTMENTS])
    population = np.array([d[2] for d in DEPARTMENTS], dtype=float)

    officines = draw_officines(rng["officines"], pharmacies, codes, population)
    depot = draw_depots(rng["depots"], depots, codes, zones, population)
    officines["depot_id"] = serve(rng["depots"], officines["department"], depot, codes, zones)
    pros = professionals(rng["professionals"], officines)
    lines = order_lines(rng["orders"], session, officines, pros)
    supply, demand = supply_and_demand(rng["supply"], session, lines)
    depot["capacity_vials"] = capacities(rng["depots"], session, depot, officines, lines, supply, demand)
    days = depot_days(rng["days"], session, depot)
    rows = order_rows(rng["rows"], session, lines, bad_rows)
    bad_rows = len(rows) - len(lines["vials"])  # none when there is no order to spoil

    out.mkdir(parents=True, exist_ok=True)
    (out / "session.toml").write_text(with_supply(text, supply, demand), encoding="utf-8")
    _write_csv(out / "pharmacies.csv", zip(officines["finess"], officines["name"], officines["email"],
                                            officines["department"], officines["depot_id"]))
    _write_csv(out / "professionals.csv", zip(pros["rpps"], pros["kind"], pros["name"], pros["email"],
                                               officines["finess"][pros["officine"]]))
    _write_csv(out / "depots.csv", zip(depot["depot_id"], depot["wholesaler"], depot["name"],
                                       depot["capacity_vials"], depot["weekdays"]))
    _write_csv(out / "depot_days.csv", days)
    with open(out / "orders.csv", "w", encoding="utf-8", newline="") as f:
        f.write("\n".join([",".join(HEADERS["orders.csv"]), *rows]) + "\n")
    return {
        "pharmacies": len(officines["finess"]),
        "professionals": len(pros["rpps"]),
        "medecin_travail": int((pros["kind"] == "medecin_travail").sum()),
        "depots": len(depot["depot_id"]),
        "depot_days": len(days),
        "order_lines": len(rows) - bad_rows,
        "bad_rows": bad_rows,
        "demand_vials": demand,
        "supply_vials": supply,
    }


def _write_csv(path: Path, rows) -> None:
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(HEADERS[path.name])
        writer.writerows(rows)
