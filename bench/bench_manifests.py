"""The national session's dispatch files (manifests/: each depot's CSV, its xlsx twin, the index): how
long they take, against writing the same run's allocations.csv and deliveries.csv in the same process.

    .venv/bin/python -m bench manifests
"""

from __future__ import annotations

import datetime as dt
import tempfile
import time
from pathlib import Path

from pipeline.adapters.files.outputs import write_csv, write_manifests
from pipeline.adapters.files.scenario import load_scenario
from pipeline.domain.allocate import allocate
from pipeline.domain.schedule import schedule_deliveries
from pipeline.domain.summary import manifest_rounds
from pipeline.generator.generate import generate_scenario


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        generate_scenario(folder / "scenario", seed=1, pharmacies=20_500, depots=185)
        scenario = load_scenario(folder / "scenario")
        session = scenario.session
        lines = allocate(session, scenario.orders, scenario.pharmacies, scenario.professionals)
        served = lines.loc[lines["allocated"] > 0, ["order_id", "finess", "vaccine", "allocated", "rank"]]
        served.insert(2, "depot_id", served["finess"].map(scenario.pharmacies.set_index("finess")["depot_id"]))
        deliveries = schedule_deliveries(served.reset_index(drop=True), scenario.depots, scenario.depot_days,
                                         session.vaccines)
        deliveries["delivery_date"] = deliveries["delivery_date"].astype(str).replace({"None": "", "NaT": ""})

        started = time.perf_counter()
        write_csv(lines, folder / "allocations.csv")
        write_csv(deliveries, folder / "deliveries.csv")
        files = time.perf_counter() - started

        started = time.perf_counter()
        rounds = manifest_rounds(deliveries, scenario.pharmacies, scenario.depots, session)
        gathered = time.perf_counter() - started
        index = write_manifests(rounds, scenario.depots, folder / "manifests", session=session.id, run=1,
                                created=dt.datetime(2021, 6, 18, tzinfo=dt.timezone.utc))
        total = time.perf_counter() - started
    print(f"{len(lines):,} lines, {len(deliveries):,} deliveries, {len(rounds):,} manifest rows, "
          f"{len(index['files'])} files")
    print(f"manifests/: {total:.2f} s ({gathered:.2f} s for the rows, {total - gathered:.2f} s to write CSV, xlsx "
          f"and index); the two CSV files: {files:.2f} s; ratio {total / files:.1f}x")


if __name__ == "__main__":
    main()
