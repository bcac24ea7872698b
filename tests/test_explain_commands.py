"""`vialflow explain` and `vialflow reallocate --preview` as a user runs them, on a run folder."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import vialflow

CONTRACT_KEYS = ["order_id", "run", "rank", "requested", "cap", "cap_used_before", "after_cap", "after_unit",
                 "supply_before", "allocated", "status", "reason", "deliveries", "pending"]





@pytest.fixture
def out(fixture_run) -> Path:
    return fixture_run


def snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_explain_json_gives_the_contract_s_object_for_a_line_cut_by_its_cap(out):
    allocations = pd.read_csv(out / "allocations.csv", dtype=str)
    line = allocations[allocations["reason"] == "cap"].iloc[0]
    done = vialflow("explain", line["order_id"], "--out", str(out), "--json")
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert list(found)[:len(CONTRACT_KEYS)] == CONTRACT_KEYS
    assert (found["order_id"], found["allocated"], found["reason"]) == (line["order_id"], int(line["allocated"]), "cap")
    assert found["after_cap"] < found["requested"]


def test_explain_says_in_french_why_a_line_was_refused_for_supply(out):
    allocations = pd.read_csv(out / "allocations.csv", dtype=str)
    line = allocations[(allocations["reason"] == "supply") & (allocations["status"] == "refused")].iloc[0]
    done = vialflow("explain", line["order_id"], "--out", str(out))
    assert done.returncode == 0, done.stderr
    head, said = done.stdout.splitlines()
    assert head.startswith(f"Ligne {line['order_id']} (session 2021-06-14, version 1)")
    assert "ligne arrivée" in said and "épuisé à" in said and "(heure de Paris)" in said
    assert "aucun flacon servi" in said


def test_explain_of_an_unknown_order_is_one_line_and_a_failure(out):
    done = vialflow("explain", "A-NOPE", "--out", str(out))
    assert done.returncode != 0
    assert done.stderr == "vialflow: Ligne inconnue : A-NOPE.\n"


def test_r11_preview_answers_what_would_change_and_leaves_the_run_folder_byte_for_byte(out, tmp_path):
    changes = tmp_path / "changes.toml"
    changes.write_text('effective = "2021-06-16"\nsupply = { moderna = 80 }\n', encoding="utf-8")
    before = snapshot(out)
    done = vialflow("reallocate", "2021-06-14", str(changes), "--out", str(out), "--preview", "--json")
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert found["vials"]["moderna"]["after"] > found["vials"]["moderna"]["before"]
    assert [line["order_id"] for line in found["lines"]] == sorted(line["order_id"] for line in found["lines"])
    assert found["recipients"] == sorted(found["recipients"]) and found["recipients"]
    assert snapshot(out) == before


def test_summary_json_gives_each_vaccine_s_supply_fill_rate_and_sold_out_instant(out):
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))["vaccines"]
    allocations = pd.read_csv(out / "allocations.csv", dtype=str)
    moderna = summary["moderna"]
    assert moderna["supply"] == 60 and summary["janssen"]["supply"] is None
    assert moderna["sold_out_at"].endswith("+02:00") and moderna["sold_out_at_utc"].endswith("+00:00")
    assert pd.Timestamp(moderna["sold_out_at"]) == pd.Timestamp(moderna["sold_out_at_utc"])
    assert summary["janssen"]["sold_out_at"] is None
    assert 0 < moderna["fill_rate"] < 1
    assert moderna["allocated"] == allocations.loc[allocations["vaccine"] == "moderna", "allocated"].astype(int).sum()


def test_r5_the_officine_s_email_says_the_nurses_cap_that_cut_its_line(out):
    allocations = pd.read_csv(out / "allocations.csv", dtype=str)
    line = allocations[(allocations["reason"] == "cap") & (allocations["effector"] == "infirmier")].iloc[0]
    cap = json.loads(vialflow("explain", line["order_id"], "--out", str(out), "--json").stdout)["cap"]
    [mail] = [p for p in (out / "mail").glob("*.eml") if f"X-Vialflow-Recipient: {line['finess']}" in p.read_text()]
    text = mail.read_text(encoding="utf-8")
    assert f"Plafond de {cap} flacons pour les infirmiers rattach" in text.replace("=\n", "")
