"""The confirmation emails as a French pharmacist reads them, end to end: `vialflow run`, then a
`vialflow reallocate` with a redistribution (R10), read from the `.eml` files the run folder keeps."""

from __future__ import annotations

import csv
import datetime as dt
import email
import email.policy
import io
import shutil
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from pipeline.adapters.files.scenario import load_session
from tests.conftest import FIXTURE, vialflow

SESSION = "2021-06-14"


def read(path: Path) -> email.message.EmailMessage:
    return email.message_from_bytes(path.read_bytes(), policy=email.policy.default)


def attachment(message, name: str):
    [part] = [part for part in message.iter_attachments() if part.get_filename() == name]
    return part


@pytest.fixture(scope="module")
def redistributed(tmp_path_factory, fixture_run) -> dict:
    """The fixture's run folder, copied, then 3 unclaimed vials of a doctor's line delivered on 17 June
    given on 24 June to another doctor of the same officine."""
    out = tmp_path_factory.mktemp("redistribution") / "out"
    shutil.copytree(fixture_run, out)
    deliveries = pd.read_csv(out / "deliveries.csv", dtype=str)
    lines = pd.read_csv(out / "allocations.csv", dtype=str)
    people = pd.read_csv(FIXTURE / "professionals.csv", dtype=str)
    early = deliveries[deliveries["delivery_date"] == "2021-06-17"].merge(lines[["order_id", "effector", "rpps"]],
                                                                       on="order_id")
    doctors = people[people["kind"] == "medecin"]
    for _, given in early[(early["effector"] == "medecin") & (early["vials"].astype(int) >= 3)].sort_values(
            "order_id").iterrows():
        colleagues = doctors[(doctors["finess"] == given["finess"]) & (doctors["rpps"] != given["rpps"])]
        if len(colleagues):
            to = colleagues.sort_values("rpps").iloc[0]
            break
    changes = out.parent / "changes.toml"
    changes.write_text(f'effective = "2021-06-24"\n[[redistribution]]\norder_id = "{given["order_id"]}"\nvials = 3\n'
                       f'to_rpps = "{to["rpps"]}"\n', encoding="utf-8")
    done = vialflow("reallocate", SESSION, str(changes), "--operator", "Claire Martin", "--reason",
                    "flacons non récupérés", "--out", str(out))
    assert done.returncode == 0, done.stderr
    officine = pd.read_csv(FIXTURE / "pharmacies.csv", dtype=str).set_index("finess").loc[given["finess"]]
    return {"out": out, "given": given, "to": to, "officine": officine,
            "mail": {p.name: p for p in (out / "mail").glob(f"{SESSION}-r2-*.eml")}}


def test_r10_the_redistribution_is_said_on_the_giving_line_of_the_officine_s_email(redistributed):
    given, to, officine = redistributed["given"], redistributed["to"], redistributed["officine"]
    message = read(redistributed["mail"][f"{SESSION}-r2-{given['finess']}.eml"])
    text = message.get_body(("plain",)).get_content().replace("\r\n", "\n")
    line = text[text.index(f"(commande {given['order_id']})"):].split("\n* ")[0]
    assert f"3 flacons non récupérés redistribués au {to['name']} (médecin, RPPS {to['rpps']})." in line
    assert f"redistribués au {to['name']} (RPPS {to['rpps']})" in text[:text.index("Voici la confirmation")]
    rows = openpyxl.load_workbook(io.BytesIO(attachment(message, "confirmation.xlsx").get_content())).active
    headings = [cell.value for cell in rows[1]]
    column = {name: index for index, name in enumerate(headings)}
    found = [[cell.value for cell in row] for row in rows.iter_rows(min_row=2)
             if row[0].value == given["order_id"]]
    assert found and "redistribués au" in found[0][column["Redistribution"]]
    assert found[0][column["Date de livraison"]] == dt.datetime(2021, 6, 17)
    assert found[0][column["Grossiste-répartiteur (dépôt)"]].startswith("OCP Répartition (dépôt ")
    assert officine["name"] in message["To"].addresses[0].display_name


def test_r10_the_receiving_doctor_gets_a_line_and_a_csv_row_naming_the_officine(redistributed):
    given, to, officine = redistributed["given"], redistributed["to"], redistributed["officine"]
    message = read(redistributed["mail"][f"{SESSION}-r2-{to['rpps']}.eml"])
    assert message["X-Vialflow-Run"] == "2" and message["Supersedes"]
    text = message.get_body(("plain",)).get_content()
    assert (f"3 flacons non récupérés à l'officine {officine['name']} (FINESS {given['finess']}) vous sont "
            "redistribués.") in text
    assert "À retirer à l'officine à partir du jeudi 24 juin 2021." in text
    assert f"à retirer à l'officine {officine['name']} (FINESS {given['finess']})" in text  # the box at the top
    html = message.get_body(("html",)).get_content()
    assert "vous sont redistribués" in html and officine["name"] in html
    rows = list(csv.DictReader(io.StringIO(attachment(message, "confirmation.csv").get_content(), newline="")))
    [row] = [row for row in rows if row["redistribution_from"] and row["order_id"] == given["order_id"]]
    assert (row["rpps"], row["vials"], row["delivery_date"], row["redistribution_from"]) == (
        to["rpps"], "3", "2021-06-24", given["finess"])
    assert all(not r["redistribution_from"] for r in rows if r is not row)


def test_r10_the_received_vials_say_the_same_requested_served_and_status_in_every_part(redistributed):
    given, to = redistributed["given"], redistributed["to"]
    message = read(redistributed["mail"][f"{SESSION}-r2-{to['rpps']}.eml"])
    rows = list(csv.DictReader(io.StringIO(attachment(message, "confirmation.csv").get_content(), newline="")))
    [row] = [row for row in rows if row["redistribution_from"] == given["finess"]]
    sheet = openpyxl.load_workbook(io.BytesIO(attachment(message, "confirmation.xlsx").get_content())).active
    headings = [cell.value for cell in sheet[1]]
    [cells] = [dict(zip(headings, (cell.value for cell in line))) for line in sheet.iter_rows(min_row=2)
               if line[0].value == given["order_id"]]
    assert (row["requested"], row["allocated"], row["status"]) == ("3", "3", "served")
    assert (cells["Flacons demandés"], cells["Flacons servis"], cells["Statut"]) == (3, 3, "servie en totalité")
    text = message.get_body(("plain",)).get_content().replace("\r\n", "\n")
    block = text[text.index(f"(commande {given['order_id']})"):].split("\n* ")[0]
    # the doses: the vials times the vaccine's doses per vial in session.toml
    per_vial = {v.label: v.doses_per_vial for v in load_session(FIXTURE / "session.toml").vaccines.values()}[
        cells["Vaccin"]]
    assert f"Demandé : 3 flacons ({3 * per_vial} doses). Servi : 3 flacons ({3 * per_vial} doses), servie en totalité." \
        in block
    html = message.get_body(("html",)).get_content()
    assert f"<td>3 flacons ({3 * per_vial} doses)</td>" in html and "servie en totalité" in html
    assert "(redistribution)" not in html


def test_r9_every_email_of_the_run_has_totals_depots_and_an_xlsx_french_excel_opens(redistributed):
    for path in sorted((redistributed["out"] / "mail").glob("*.eml")):
        message = read(path)
        text = message.get_body(("plain",)).get_content()
        assert "En résumé :" in text and "Flacons servis : " in text
        assert "1ère" not in text and "2ème" not in text
        csv_rows = list(csv.DictReader(io.StringIO(attachment(message, "confirmation.csv").get_content(),
                                                   newline="")))
        part = attachment(message, "confirmation.xlsx")
        assert part.get_content_type() == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        sheet = openpyxl.load_workbook(io.BytesIO(part.get_content())).active
        assert sheet.max_row - 1 == len(csv_rows)
        assert sheet["A1"].value == "Commande" and sheet["G1"].value == "Flacons demandés"
        for row in sheet.iter_rows(min_row=2):
            assert isinstance(row[6].value, int | None) and isinstance(row[7].value, int)
            assert row[10].value is None or isinstance(row[10].value, dt.datetime)  # dates only, never text
        if any(r["delivery_date"] for r in csv_rows):
            assert "Livraison le " in text and " par " in text and "(dépôt " in text


def test_r4_a_line_cut_by_its_cap_says_the_cap_in_the_email_it_is_sent_in(fixture_run):
    lines = pd.read_csv(fixture_run / "allocations.csv", dtype=str)
    cut = lines[(lines["reason"] == "cap") & (lines["effector"] == "medecin")].sort_values("order_id").iloc[0]
    message = read(fixture_run / "mail" / f"{SESSION}-r1-{cut['finess']}.eml")
    text = message.get_body(("plain",)).get_content().replace("\r\n", "\n")
    block = text[text.index(f"(commande {cut['order_id']})"):].split("\n* ")[0]
    assert "Motif : Plafond de 5 flacons par médecin atteint" in block or \
        "Motif : Plafond de 10 flacons par médecin atteint" in block
