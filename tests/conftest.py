"""Small builders for hand-made sessions, registers and order lines."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from pipeline.domain.rules import Session, Vaccine

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "2021-06-14"  # the notice's session, as shipped
# The two conformance scenarios, with the outputs an independent implementation gives for them.
EXAMPLES = Path(__file__).resolve().parent / "conformance"

# The notice's window, in Paris time: 14 June 08:00 (06:00 UTC) to 15 June 23:00 (21:00 UTC).
OPENS = pd.Timestamp("2021-06-14T06:00:00Z")
CLOSES = pd.Timestamp("2021-06-15T21:00:00Z")


def vaccine(caps: dict | None = None, *, box: int = 1, supply: int | None = None,
            allocation: str = "fcfs", remainders: bool = True) -> Vaccine:
    """A vaccine open by default to the officine itself (`pharmacien`, first injection, 10 vials)."""
    return Vaccine(label="Vaccin", doses_per_vial=10, box_vials=box, supply_vials=supply,
                   allocation=allocation, remainders=remainders,
                   deliver_from=dt.date(2021, 6, 17), deliver_by=dt.date(2021, 6, 25),
                   caps=caps if caps is not None else {"pharmacien": {"first": 10}})


def session(zone: str | tuple[str, ...] = "national", **vaccines: Vaccine) -> Session:
    """The notice's session with the given vaccines (default: one `janssen` open to officines)."""
    return Session(id="test", timezone="Europe/Paris",
                   opens_at=dt.datetime(2021, 6, 14, 8), closes_at=dt.datetime(2021, 6, 15, 23),
                   confirmation_at=dt.datetime(2021, 6, 18, 9), zone=zone,
                   vaccines=vaccines or {"janssen": vaccine()})


def pharmacies(*rows: tuple[str, str]) -> pd.DataFrame:
    """The pharmacies register from (finess, department) pairs."""
    return pd.DataFrame({
        "finess": [finess for finess, _ in rows],
        "name": [f"Pharmacie {finess}" for finess, _ in rows],
        "email": [f"{finess}@pharma.example.fr" for finess, _ in rows],
        "department": [department for _, department in rows],
        "depot_id": ["D-1"] * len(rows),
    }, columns=["finess", "name", "email", "department", "depot_id"])


def professionals(*rows: tuple[str, str, str]) -> pd.DataFrame:
    """The professionals register from (rpps, kind, finess of attachment) triples."""
    return pd.DataFrame({
        "rpps": [rpps for rpps, _, _ in rows],
        "kind": [kind for _, kind, _ in rows],
        "name": [f"Dr {rpps}" for rpps, _, _ in rows],
        "email": [f"{rpps}@sante.example.fr" for rpps, _, _ in rows],
        "finess": [finess for _, _, finess in rows],
    }, columns=["rpps", "kind", "name", "email", "finess"])


def at(text: str) -> pd.Timestamp:
    """An ISO 8601 instant with offset, as the UTC timestamp the scenario reader gives."""
    return pd.Timestamp(text).tz_convert("UTC")


def orders(*lines: dict) -> pd.DataFrame:
    """Order lines with defaults: `A-001`, `A-002`... submitted one minute apart in list order,
    officine 010000001 ordering 1 vial of `janssen`, first injection, for itself."""
    columns = {"order_id": [], "submitted_at": [], "finess": [], "effector": [], "rpps": [], "vaccine": [],
               "injection": [], "vials": []}
    for number, line in enumerate(lines, start=1):
        row = {"order_id": f"A-{number:03d}", "submitted_at": OPENS + pd.Timedelta(minutes=number),
               "finess": "010000001", "effector": "pharmacien", "rpps": "", "vaccine": "janssen",
               "injection": "first", "vials": 1} | line
        if isinstance(row["submitted_at"], str):
            row["submitted_at"] = at(row["submitted_at"])
        for name, cells in columns.items():
            cells.append(row[name])
    # Text as `object`, like the scenario reader gives it.
    return pd.DataFrame({name: pd.Series(cells, dtype=object) for name, cells in columns.items()} | {
        "submitted_at": pd.Series(columns["submitted_at"], dtype="datetime64[ns, UTC]"),
        "vials": pd.Series(columns["vials"], dtype="int64"),
    })


def by_order(decisions: pd.DataFrame) -> dict[str, tuple[int, str, str]]:
    """Each line's (allocated, status, reason), by order id."""
    return {row.order_id: (int(row.allocated), row.status, row.reason) for row in decisions.itertuples()}


def vialflow(*args: str) -> subprocess.CompletedProcess:
    """The `vialflow` command as a user runs it, with none of this environment's VIALFLOW_ settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIALFLOW_")}
    return subprocess.run([sys.executable, "-m", "pipeline.entrypoints.cli", *args], capture_output=True, text=True,
                          env=env, timeout=300)


@pytest.fixture(scope="session")
def fixture_run(tmp_path_factory) -> Path:
    """`vialflow run` of the shipped fixture, once: a run folder that tests read and never change (copy it first)."""
    folder = tmp_path_factory.mktemp("fixture-run") / "out"
    done = vialflow("run", str(FIXTURE), "--out", str(folder))
    assert done.returncode == 0, done.stderr
    return folder
