"""`vialflow verify` on whole runs: each version of a run and of its reallocation with a policy change
(R7, R11) derived again agrees with what is stored; a row, an email or a file changed by hand does not,
and the first line says which. The preview of the policy change said what the reallocation did."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3

import pandas as pd
import pytest

from pipeline.settings import DATABASE_FILE
from tests.conftest import vialflow

SESSION = "2021-06-14"
POLICY = 'effective = "2021-06-16"\nsupply = { janssen = 80 }\nallocation = { janssen = "pro_rata" }\n'


@pytest.fixture(scope="module")
def reallocated(fixture_run, tmp_path_factory):
    """The fixture's run, then a reallocation sharing Janssen pro rata: (folder, its preview)."""
    folder = tmp_path_factory.mktemp("verify") / "run"
    shutil.copytree(fixture_run, folder)
    changes = folder.parent / "changes.toml"
    changes.write_text(POLICY)
    previewed = vialflow("reallocate", SESSION, str(changes), "--out", str(folder), "--preview", "--json")
    assert previewed.returncode == 0, previewed.stderr
    done = vialflow("reallocate", SESSION, str(changes), "--operator", "Ops", "--reason", "pro rata", "--out",
                    str(folder))
    assert done.returncode == 0, done.stderr
    return folder, json.loads(previewed.stdout)


def tampered(folder, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    return copy


def allocations(folder, version: int) -> pd.DataFrame:
    return pd.read_csv(folder / "runs" / str(version) / "allocations.csv", dtype=str, keep_default_na=False)


@pytest.mark.parametrize("version", [1, 2])
def test_r11_each_version_derived_again_agrees_and_says_its_digest_as_its_summary_does(reallocated, version):
    folder, _ = reallocated
    done = vialflow("verify", SESSION, "--run", str(version), "--out", str(folder))
    digest = json.loads((folder / "runs" / str(version) / "summary.json").read_text())["digest"]
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest)
    assert len(done.stdout.splitlines()) == 1 and f"version {version} {digest}" in done.stdout
    assert "emails" in done.stdout and "files" in done.stdout
    report = (folder / "runs" / str(version) / "report.html").read_text()
    assert digest in report and 'id="fairness"' in report and "Indice de Gini" in report


def test_r7_the_preview_of_a_policy_change_gave_the_lines_and_fairness_of_the_version_that_followed(reallocated):
    folder, preview = reallocated
    before, after = allocations(folder, 1).set_index("order_id"), allocations(folder, 2).set_index("order_id")
    summary = json.loads((folder / "runs" / "2" / "summary.json").read_text())
    deliveries = [pd.read_csv(folder / "runs" / str(v) / "deliveries.csv", dtype=str, keep_default_na=False)
                  for v in (1, 2)]
    days = [d.groupby("order_id")[["delivery_date", "vials"]].apply(lambda g: sorted(map(tuple, g.to_numpy())))
            for d in deliveries]
    changed = sorted(k for k in after.index if (before.at[k, "allocated"], before.at[k, "reason"], days[0].get(k))
                     != (after.at[k, "allocated"], after.at[k, "reason"], days[1].get(k)))
    assert changed and [line["order_id"] for line in preview["lines"]] == changed
    for line in preview["lines"]:
        assert str(line["allocated_after"]) == after.at[line["order_id"], "allocated"]
    janssen = after[after["vaccine"] == "janssen"]
    assert janssen["allocated"].astype(int).sum() == 80 and (janssen["reason"] == "supply").any()
    for key, figures in preview["fairness"].items():
        assert figures["after"] == summary["vaccines"][key]["fairness"]
    assert preview["fairness"]["janssen"]["before"] != preview["fairness"]["janssen"]["after"]


def test_an_allocation_row_changed_by_hand_in_the_database_is_caught_and_named(reallocated, tmp_path):
    copy = tampered(reallocated[0], tmp_path)
    with sqlite3.connect(copy / DATABASE_FILE) as db:
        run = db.execute("SELECT id FROM runs WHERE version = 2").fetchone()[0]
        order_id = db.execute("SELECT order_id FROM decisions WHERE run_id = ? AND allocated > 0 ORDER BY order_id "
                              "LIMIT 1 OFFSET 3", (run,)).fetchone()[0]
        db.execute("UPDATE decisions SET allocated = allocated + 1 WHERE run_id = ? AND order_id = ?", (run, order_id))
    done = vialflow("verify", SESSION, "--out", str(copy))
    assert done.returncode == 1 and done.stdout.splitlines()[0].startswith(f"{order_id}: allocated")
    assert vialflow("verify", SESSION, "--run", "1", "--out", str(copy)).returncode == 0  # version 1 is untouched


def test_a_delivery_moved_by_hand_in_the_database_is_caught_and_named(reallocated, tmp_path):
    copy = tampered(reallocated[0], tmp_path)
    with sqlite3.connect(copy / DATABASE_FILE) as db:
        order_id = db.execute("SELECT d.order_id FROM deliveries d JOIN runs r ON r.id = d.run_id WHERE r.version = 1 "
                              "AND d.status = 'scheduled' ORDER BY d.order_id LIMIT 1").fetchone()[0]
        db.execute("UPDATE deliveries SET delivery_date = '2021-06-30' WHERE order_id = ? AND run_id = "
                   "(SELECT id FROM runs WHERE version = 1)", (order_id,))
    done = vialflow("verify", SESSION, "--run", "1", "--out", str(copy))
    assert done.returncode == 1 and done.stdout.splitlines()[0].startswith(f"{order_id}: delivered")


def test_an_email_or_a_data_file_changed_by_hand_is_caught_and_named(reallocated, tmp_path):
    copy = tampered(reallocated[0], tmp_path)
    email = sorted((copy / "mail").glob(f"{SESSION}-r2-*.eml"))[0]
    recipient = email.stem.rsplit("-", 1)[1]
    email.write_bytes(email.read_bytes().replace(b"flacon", b"flacons", 1))
    done = vialflow("verify", SESSION, "--out", str(copy))
    assert done.returncode == 1 and done.stdout.splitlines()[0].startswith(f"{recipient}: ")
    copy = tampered(reallocated[0], tmp_path / "again")
    rows = allocations(copy, 1)
    rows.loc[2, "allocated"] = str(int(rows.loc[2, "allocated"]) + 1)
    rows.to_csv(copy / "runs" / "1" / "allocations.csv", index=False, lineterminator="\n")
    done = vialflow("verify", SESSION, "--run", "1", "--out", str(copy))
    assert done.returncode == 1 and done.stdout.splitlines()[0].startswith(f"{rows.loc[2, 'order_id']}: ")


@pytest.mark.parametrize("args, said", [
    (["2021-06-15"], "Session inconnue : 2021-06-15."),
    ([SESSION, "--run", "9"], "n'a pas de version 9"),
])
def test_an_unknown_session_or_version_is_a_slip_said_in_one_line(reallocated, args, said):
    done = vialflow("verify", *args, "--out", str(reallocated[0]))
    assert done.returncode == 2 and done.stdout == "" and len(done.stderr.splitlines()) == 1 and said in done.stderr


def test_verify_without_a_database_is_a_slip_naming_the_fix(tmp_path):
    done = vialflow("verify", SESSION, "--out", str(tmp_path))
    assert done.returncode == 2 and len(done.stderr.splitlines()) == 1 and "--database-url" in done.stderr


def test_r11_a_previous_version_with_only_pending_deliveries_has_nothing_delivered_by_the_effective_date():
    import datetime as dt

    from pipeline.services.runs import delivered_by

    pending = pd.DataFrame({"order_id": ["A-1", "A-2"], "depot_id": ["D-1"] * 2, "vaccine": ["v"] * 2,
                            "delivery_date": [None, None], "vials": [3, 4], "status": ["pending"] * 2})
    assert delivered_by(pending, dt.date(2021, 6, 20)).empty
    mixed = pending.assign(delivery_date=["2021-06-18", None], status=["scheduled", "pending"])
    found = delivered_by(mixed, dt.date(2021, 6, 20))
    assert found.to_dict("records") == [{"order_id": "A-1", "depot_id": "D-1", "vaccine": "v",
                                         "delivery_date": dt.date(2021, 6, 18), "vials": 3}]
    assert delivered_by(mixed, dt.date(2021, 6, 17)).empty


def test_r7_r11_a_policy_changed_after_deliveries_leaves_each_line_what_it_received_and_verifies(fixture_run,
                                                                                                  tmp_path):
    folder = tmp_path / "run"
    shutil.copytree(fixture_run, folder)
    changes = tmp_path / "late.toml"
    changes.write_text('effective = "2021-06-18"\nsupply = { janssen = 100, astrazeneca = 110 }\n'
                       'allocation = { janssen = "pro_rata", astrazeneca = "pro_rata" }\n')
    previewed = vialflow("reallocate", SESSION, str(changes), "--out", str(folder), "--preview", "--json")
    done = vialflow("reallocate", SESSION, str(changes), "--operator", "Ops", "--reason", "prorata", "--out",
                    str(folder))
    assert previewed.returncode == 0 and done.returncode == 0, previewed.stderr + done.stderr
    first = pd.read_csv(folder / "runs" / "1" / "deliveries.csv", dtype=str, keep_default_na=False)
    gone = first[(first["status"] == "scheduled") & (first["delivery_date"] <= "2021-06-18")
                 & first["vaccine"].isin(["janssen", "astrazeneca"])]
    received = gone.assign(vials=gone["vials"].astype(int)).groupby("order_id")["vials"].sum()
    after = allocations(folder, 2).set_index("order_id")["allocated"].astype(int)
    assert len(received) and (after[received.index] >= received).all()
    second = pd.read_csv(folder / "runs" / "2" / "deliveries.csv", dtype=str, keep_default_na=False)
    kept = second[(second["status"] == "scheduled") & (second["delivery_date"] <= "2021-06-18")]
    assert sorted(map(tuple, kept[["order_id", "delivery_date", "vials"]].to_numpy())) == sorted(
        map(tuple, first[(first["status"] == "scheduled") & (first["delivery_date"] <= "2021-06-18")][
            ["order_id", "delivery_date", "vials"]].to_numpy()))  # what left the depots stays as it was
    preview = json.loads(previewed.stdout)
    assert all(line["allocated_after"] == after[line["order_id"]] for line in preview["lines"])
    for version in ("1", "2"):
        assert vialflow("verify", SESSION, "--run", version, "--out", str(folder)).returncode == 0
