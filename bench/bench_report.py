"""The national session's report.html: how long it takes to build, against writing the same run's
allocations.csv and deliveries.csv in the same process.

    .venv/bin/python -m bench report
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

from pipeline.adapters.files.outputs import write_csv
from pipeline.adapters.files.report import write_report
from pipeline.adapters.files.scenario import load_scenario
from pipeline.domain.allocate import allocate
from pipeline.domain.changes import RunChanges
from pipeline.domain.report import report_data
from pipeline.domain.schedule import schedule_deliveries
from pipeline.domain.summary import emails_summary
from pipeline.generator.generate import generate_scenario


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        generate_scenario(folder / "scenario", seed=1, pharmacies=20_500, depots=185)
        scenario = load_scenario(folder / "scenario")
        session = scenario.session
        lines = allocate(session, scenario.orders, scenario.pharmacies, scenario.professionals, trace=True)
        served = lines.loc[lines["allocated"] > 0, ["order_id", "finess", "vaccine", "allocated", "rank"]]
        served.insert(2, "depot_id", served["finess"].map(scenario.pharmacies.set_index("finess")["depot_id"]))
        deliveries = schedule_deliveries(served.reset_index(drop=True), scenario.depots, scenario.depot_days,
                                         session.vaccines)
        run = SimpleNamespace(version=1, operator="scheduler", reason="session close", changes=RunChanges())
        print(f"{len(lines):,} lines, {len(deliveries):,} deliveries, {len(scenario.depots)} depots")

        started = time.perf_counter()
        write_csv(lines, folder / "allocations.csv")
        write_csv(deliveries, folder / "deliveries.csv")
        files = time.perf_counter() - started

        started = time.perf_counter()
        data = report_data(session, run, lines, deliveries, scenario.pharmacies, scenario.depots,
                           scenario.depot_days, emails_summary({"sent": 60_000}))
        gathered = time.perf_counter() - started
        write_report(data, folder / "report.html")
        total = time.perf_counter() - started
        size = (folder / "report.html").stat().st_size
    print(f"report.html: {total:.2f} s ({gathered:.2f} s for its data, {total - gathered:.2f} s to draw and write), "
          f"{size / 1e6:.1f} MB; the two CSV files: {files:.2f} s; ratio {total / files:.1f}x")


if __name__ == "__main__":
    main()
