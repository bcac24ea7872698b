"""The depots' dispatch files: each round's rows with what a wholesaler's import needs, the pending vials,
the xlsx twin and the index a transfer job checks them against."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil

import openpyxl
import pandas as pd

from pipeline.adapters.files.outputs import write_manifests
from pipeline.domain.summary import MANIFEST_COLUMNS, manifest_rounds
from tests.conftest import FIXTURE, pharmacies, session, vaccine, vialflow

CREATED = dt.datetime(2021, 6, 18, 9, tzinfo=dt.timezone.utc)


def deliveries(*rows: tuple) -> pd.DataFrame:
    """deliveries.csv rows from (order_id, finess, depot_id, vaccine, delivery_date or "", vials)."""
    return pd.DataFrame([(*row, "scheduled" if row[4] else "pending") for row in rows],
                        columns=["order_id", "finess", "depot_id", "vaccine", "delivery_date", "vials", "status"])


def depots(*rows: tuple[str, str]) -> pd.DataFrame:
    return pd.DataFrame({"depot_id": [d for d, _ in rows], "wholesaler": [w for _, w in rows],
                         "name": ["dépôt"] * len(rows), "capacity_vials": [100] * len(rows),
                         "weekdays": ["Mon-Fri"] * len(rows)})


RULES = session(janssen=vaccine().model_copy(update={"product_code": "03400930000017", "label": "Janssen"}),
                moderna=vaccine(box=10).model_copy(update={"label": "Moderna"}))
REGISTER = pharmacies(("010000001", "01"), ("750000002", "75"))
DEPOTS = depots(("D-1", "OCP Répartition"), ("D-2", "Phoenix Pharma"))


def test_r8_rows_per_day_officine_and_vaccine_then_the_pending_vials_each_with_the_orders_it_serves():
    rows = manifest_rounds(deliveries(
        ("A-3", "010000001", "D-1", "janssen", "2021-06-18", 2), ("A-1", "010000001", "D-1", "janssen", "2021-06-18", 3),
        ("A-1", "010000001", "D-1", "janssen", "", 4), ("A-2", "750000002", "D-1", "moderna", "2021-06-17", 20),
        ("A-4", "750000002", "D-1", "moderna", "", 10)), REGISTER, DEPOTS, RULES)
    assert list(rows.columns) == MANIFEST_COLUMNS
    assert rows.to_dict("records") == [
        {"delivery_date": "2021-06-17", "finess": "750000002", "officine": "Pharmacie 750000002", "vaccine": "moderna",
         "vials": 20, "boxes": 2, "depot_id": "D-1", "wholesaler": "OCP Répartition", "department": "75",
         "vaccine_label": "Moderna", "product_code": "", "order_ids": "A-2", "status": "scheduled"},
        {"delivery_date": "2021-06-18", "finess": "010000001", "officine": "Pharmacie 010000001", "vaccine": "janssen",
         "vials": 5, "boxes": 5, "depot_id": "D-1", "wholesaler": "OCP Répartition", "department": "01",
         "vaccine_label": "Janssen", "product_code": "03400930000017", "order_ids": "A-1 A-3", "status": "scheduled"},
        {"delivery_date": "", "finess": "010000001", "officine": "Pharmacie 010000001", "vaccine": "janssen",
         "vials": 4, "boxes": 4, "depot_id": "D-1", "wholesaler": "OCP Répartition", "department": "01",
         "vaccine_label": "Janssen", "product_code": "03400930000017", "order_ids": "A-1", "status": "pending"},
        {"delivery_date": "", "finess": "750000002", "officine": "Pharmacie 750000002", "vaccine": "moderna",
         "vials": 10, "boxes": 1, "depot_id": "D-1", "wholesaler": "OCP Répartition", "department": "75",
         "vaccine_label": "Moderna", "product_code": "", "order_ids": "A-4", "status": "pending"}]


def test_a_run_with_no_delivery_gives_no_rows_but_the_contract_columns():
    rows = manifest_rounds(deliveries(), REGISTER, DEPOTS, RULES)
    assert rows.empty and list(rows.columns) == MANIFEST_COLUMNS


def written(tmp_path, folder="manifests") -> tuple[dict, pd.DataFrame]:
    rows = manifest_rounds(deliveries(("A-1", "010000001", "D-1", "janssen", "2021-06-18", 3),
                                      ("A-1", "010000001", "D-1", "janssen", "", 4)), REGISTER, DEPOTS, RULES)
    return write_manifests(rows, DEPOTS, tmp_path / folder, session="s1", run=2, created=CREATED), rows


def test_every_depot_gets_its_csv_and_its_twin_listed_in_the_index_even_without_a_round(tmp_path):
    index, _ = written(tmp_path)
    on_disk = json.loads((tmp_path / "manifests" / "index.json").read_text(encoding="utf-8"))
    assert on_disk == index and index["session"] == "s1" and index["run"] == 2
    assert [(f["path"], f["rows"], f["vials"]) for f in index["files"]] == [
        ("ocp-repartition/D-1.csv", 2, 7), ("ocp-repartition/D-1.xlsx", 2, 7),
        ("phoenix-pharma/D-2.csv", 0, 0), ("phoenix-pharma/D-2.xlsx", 0, 0)]
    for entry in index["files"]:
        assert entry["sha256"] == hashlib.sha256((tmp_path / "manifests" / entry["path"]).read_bytes()).hexdigest()
    empty = (tmp_path / "manifests" / "phoenix-pharma" / "D-2.csv").read_text(encoding="utf-8")
    assert empty == ",".join(MANIFEST_COLUMNS) + "\n"
    assert [row for row in openpyxl.load_workbook(tmp_path / "manifests" / "phoenix-pharma" / "D-2.xlsx")
            .worksheets[0].iter_rows(values_only=True)] == [tuple(MANIFEST_COLUMNS)]


def test_the_same_run_writes_the_same_bytes_and_the_twin_carries_the_runs_stamp_not_the_clock(tmp_path):
    first, _ = written(tmp_path, "a")
    second, _ = written(tmp_path, "b")
    assert first == second
    book = openpyxl.load_workbook(tmp_path / "a" / "ocp-repartition" / "D-1.xlsx")
    assert book.properties.created == CREATED.replace(tzinfo=None)
    assert book.sheetnames == ["Livraisons", "Colonnes"]


def test_the_csv_starts_with_the_contract_header_no_byte_order_mark(tmp_path):
    written(tmp_path)
    data = (tmp_path / "manifests" / "ocp-repartition" / "D-1.csv").read_bytes()
    assert data.startswith(b"delivery_date,finess,officine,vaccine,vials,boxes,depot_id,")
    assert data.splitlines()[1:] == [
        b"2021-06-18,010000001,Pharmacie 010000001,janssen,3,3,D-1,OCP R\xc3\xa9partition,01,Janssen,03400930000017,"
        b"A-1,scheduled",
        b",010000001,Pharmacie 010000001,janssen,4,4,D-1,OCP R\xc3\xa9partition,01,Janssen,03400930000017,A-1,pending"]


def test_a_folder_being_rewritten_has_no_index_until_its_files_are_whole(tmp_path, monkeypatch):
    written(tmp_path)
    index = tmp_path / "manifests" / "index.json"
    seen = []
    real = pd.DataFrame.to_csv

    def watching(frame, *args, **kwargs):
        seen.append(index.exists())
        return real(frame, *args, **kwargs)

    monkeypatch.setattr(pd.DataFrame, "to_csv", watching)
    written(tmp_path)
    assert seen == [False, False] and index.exists()


def test_a_product_code_not_of_cip13_or_gtin_length_stops_the_run_in_one_line_naming_it(tmp_path):
    scenario = tmp_path / "scenario"
    shutil.copytree(FIXTURE, scenario)
    path = scenario / "session.toml"
    path.write_text(path.read_text(encoding="utf-8").replace('label = "Janssen"\n',
                                                             'label = "Janssen"\nproduct_code = "34009-30"\n'),
                    encoding="utf-8")
    done = vialflow("run", str(scenario), "--out", str(tmp_path / "out"))
    assert done.returncode != 0 and done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert "session.toml: field vaccines.janssen.product_code" in done.stderr and "'34009-30'" in done.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
