"""What each recipient receives, read by the tools they use rather than by our own code: a real
`vialflow run` of the shipped fixtures, signed with a DKIM key, checked with dkimpy, the standard
library's strict email policy, icalendar and openpyxl; the manifests against their index."""

from __future__ import annotations

import csv
import datetime as dt
import email
import email.parser
import email.policy
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
from email.utils import parseaddr
from pathlib import Path

import dkim
import icalendar
import openpyxl
import pandas as pd
import pytest

from pipeline.adapters.files.scenario import load_session
from pipeline.domain.summary import MANIFEST_COLUMNS
from pipeline.domain.vocabulary import Delivery, Status

from .conftest import FIXTURE
from .test_dkim import DOMAIN, SELECTOR, add_header, dns, rsa_key

# Product codes as a session file may give them: the contract's CIP13 and a GTIN-14 whose leading 0 must
# survive; AstraZeneca keeps none.
PRODUCT_CODES = {"janssen": "3400930000000", "moderna": "03400930000017"}


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[Path, bytes]:
    """The fixtures with product codes, run once with an RSA key: (output folder, the key's DNS record)."""
    folder = tmp_path_factory.mktemp("recipients")
    scenario = folder / "scenario"
    shutil.copytree(FIXTURE, scenario)
    path = scenario / "session.toml"
    text = path.read_text(encoding="utf-8")
    for key, code in PRODUCT_CODES.items():
        text = text.replace(f"[vaccines.{key}]\n", f'[vaccines.{key}]\nproduct_code = "{code}"\n', 1)
    path.write_text(text, encoding="utf-8")
    key, record = rsa_key(folder)
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIALFLOW_")}
    env.update(VIALFLOW_DKIM_KEY_FILE=str(key), VIALFLOW_DKIM_SELECTOR=SELECTOR, VIALFLOW_DKIM_DOMAIN=DOMAIN)
    out = folder / "out"
    done = subprocess.run([sys.executable, "-m", "pipeline.entrypoints.cli", "run", str(scenario), "--out", str(out)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    return out, record


def emails(out: Path) -> list[tuple[str, bytes]]:
    found = [(path.name, path.read_bytes()) for path in sorted((out / "mail").glob("*.eml"))]
    assert len(found) > 20
    return found


def attachments(raw: bytes, suffix: str) -> list[bytes]:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    return [part.get_payload(decode=True) for part in message.iter_attachments() if part.get_filename().endswith(suffix)]


# -- emails ------------------------------------------------------------------------------------------------

def test_r9_every_email_of_the_run_verifies_with_dkimpy_and_the_public_key(run):
    out, record = run
    for name, raw in emails(out):
        assert raw.startswith(b"DKIM-Signature: ") and dkim.verify(raw, dnsfunc=dns(record)), name


@pytest.mark.parametrize("header", ["Reply-To: escroc@example.org", "Subject: Vos vaccins sont annulés"])
def test_r9_a_reply_to_or_a_second_subject_added_on_top_breaks_every_signature(run, header):
    out, record = run
    for name, raw in emails(out):
        assert not dkim.verify(add_header(raw, header, "top"), dnsfunc=dns(record)), name


def test_r9_every_email_parses_under_the_strict_policy_with_its_id_on_the_sending_domain(run):
    out, _ = run
    parser = email.parser.BytesParser(policy=email.policy.strict)
    for name, raw in emails(out):
        message = parser.parsebytes(raw)
        for part in message.walk():
            for field, value in part.items():  # a header is parsed when read: strict raises on a defect
                str(value)
            if not part.is_multipart():
                part.get_content()
            assert part.defects == [], name
        sender_domain = parseaddr(str(message["From"]))[1].rpartition("@")[2]
        assert sender_domain == DOMAIN
        assert re.fullmatch(r"<[^@<>]+@" + re.escape(sender_domain) + ">", str(message["Message-ID"])), name


def test_r9_every_calendar_parses_with_icalendar(run):
    out, _ = run
    calendars = 0
    for name, raw in emails(out):
        for data in attachments(raw, ".ics"):
            calendar = icalendar.Calendar.from_ical(data)
            calendars += 1
            assert calendar.name == "VCALENDAR" and str(calendar["VERSION"]) == "2.0", name
            for component in calendar.walk():
                assert component.errors == [], (name, component.name, component.errors)
            for event in calendar.walk("VEVENT"):
                assert isinstance(event.decoded("DTSTART"), dt.date) and event["UID"] and event["SUMMARY"], name
    assert calendars


def test_r9_a_calendar_is_attached_exactly_when_a_delivery_has_a_date_and_never_empty(run):
    out, _ = run
    without = 0
    for name, raw in emails(out):
        message = email.message_from_bytes(raw, policy=email.policy.default)
        (text,) = attachments(raw, ".csv")
        rows = csv.DictReader(io.StringIO(text.decode("utf-8")))
        days = {row["delivery_date"] for row in rows if row["delivery_date"]}
        calendars = attachments(raw, ".ics")
        body = message.get_body(("plain",)).get_content() + message.get_body(("html",)).get_content()
        if days:
            (data,) = calendars
            events = icalendar.Calendar.from_ical(data).walk("VEVENT")
            assert sorted(event.decoded("DTSTART").isoformat() for event in events) == sorted(days), name
            assert "livraisons.ics" in body, name
        else:
            without += 1
            assert calendars == [] and "livraisons.ics" not in body, name
            assert "ce mail ne joint donc pas de calendrier" in body, name
    assert without  # the fixtures have recipients with nothing scheduled (refused or pending lines only)


def test_r2_a_refused_line_with_no_known_professional_is_headed_as_such_in_the_officine_s_email(run):
    out, _ = run
    refused = read_csv(out / "allocations.csv")
    known = set(read_csv(FIXTURE / "professionals.csv")["rpps"])
    # R2: no RPPS, or one the register does not hold (a registered one of another kind keeps its name)
    refused = refused[(refused["reason"] == "unknown_professional") & ~refused["rpps"].isin(known)]
    assert len(refused) >= 2 and refused["rpps"].eq("").any()
    for finess in sorted(set(refused["finess"])):
        message = email.message_from_bytes((out / "mail" / f"2021-06-14-r1-{finess}.eml").read_bytes(),
                                           policy=email.policy.default)
        text, html = message.get_body(("plain",)).get_content(), message.get_body(("html",)).get_content()
        assert "== Pour un professionnel non reconnu (" in text and "Pour un professionnel non reconnu (" in html
    for name, raw in emails(out):
        assert b"Pour RPPS" not in raw and b"RPPS )" not in raw, name


def test_r9_every_confirmation_spreadsheet_opens_with_ids_as_text_and_dates_as_dates(run):
    out, _ = run
    session = load_session(out.parent / "scenario" / "session.toml")
    per_vial = {vaccine.label: vaccine.doses_per_vial for vaccine in session.vaccines.values()}
    pending = 0
    for name, raw in emails(out):
        (data,) = attachments(raw, ".xlsx")
        (text,) = attachments(raw, ".csv")
        lines = list(csv.DictReader(io.StringIO(text.decode("utf-8"))))
        sheet = openpyxl.load_workbook(io.BytesIO(data)).worksheets[0]
        rows = list(sheet.iter_rows(values_only=True))
        heading = rows[0]
        assert len(rows) - 1 == len(lines), name
        for row, line in zip(rows[1:], lines):
            cell = dict(zip(heading, row))
            assert cell["Commande"] == line["order_id"], name  # text, as the CSV has it
            assert cell["RPPS"] == (line["rpps"] or None), name  # text: eleven digits, never a number
            assert cell["Flacons demandés"] == int(line["requested"]) and cell["Flacons servis"] == int(line["allocated"])
            assert cell["Statut"] == Status(line["status"]).long  # the words the text and HTML use
            if line["delivery_date"]:
                assert cell["Date de livraison"] == dt.datetime.fromisoformat(line["delivery_date"]), name
                assert cell["Rendez-vous à partir du"] == dt.datetime.fromisoformat(line["earliest_appointment"])
                assert cell["Statut de la livraison"] == Delivery.SCHEDULED.long
            else:  # the date column holds dates only: a pending remainder is said in the status column
                assert cell["Date de livraison"] is None, name
                assert cell["Statut de la livraison"] == (Delivery.PENDING.long if line["vials"] else None), name
                pending += bool(line["vials"])
            # doses = vials × the vaccine's doses per vial (session.toml)
            doses = per_vial[cell["Vaccin"]]
            assert (cell["Doses demandées"], cell["Doses servies"]) == (int(line["requested"]) * doses,
                                                                          int(line["allocated"]) * doses), name
            assert cell["Doses de la livraison"] == (int(line["vials"]) * doses if line["vials"] else None), name
    assert pending  # the fixtures leave vials waiting for a date


# -- manifests ---------------------------------------------------------------------------------------------

def manifest_files(out: Path) -> list[Path]:
    folder = out / "manifests"
    return sorted(path for path in folder.rglob("*") if path.is_file() and path.name != "index.json")


def read_csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def test_the_manifests_index_names_every_file_with_its_rows_vials_and_sha256_and_comes_last(run):
    out, _ = run
    folder = out / "manifests"
    index = json.loads((folder / "index.json").read_text(encoding="utf-8"))
    assert index["session"] == "2021-06-14" and index["run"] == 1
    files = manifest_files(out)
    assert sorted(entry["path"] for entry in index["files"]) == [p.relative_to(folder).as_posix() for p in files]
    assert {p.suffix for p in files} == {".csv", ".xlsx"} and len(files) == 2 * 3  # three depots, each with its twin
    for entry in index["files"]:
        path = folder / entry["path"]
        assert entry["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest(), entry["path"]
        if path.suffix == ".csv":
            rows = read_csv(path)
            assert entry["rows"] == len(rows) and entry["vials"] == rows["vials"].astype(int).sum(), entry["path"]
        else:
            sheet = openpyxl.load_workbook(path).worksheets[0]
            data = list(sheet.iter_rows(min_row=2, values_only=True))
            assert entry["rows"] == len(data) and entry["vials"] == sum(row[4] for row in data), entry["path"]
        assert (folder / "index.json").stat().st_mtime_ns >= path.stat().st_mtime_ns


def test_each_manifest_names_its_depot_wholesaler_officines_departments_and_products(run):
    out, _ = run
    depots = read_csv(FIXTURE / "depots.csv").set_index("depot_id")
    pharmacies = read_csv(FIXTURE / "pharmacies.csv").set_index("finess")
    labels = {key: vaccine.label for key, vaccine in load_session(FIXTURE / "session.toml").vaccines.items()}
    for path in manifest_files(out):
        if path.suffix != ".csv":
            continue
        rows = read_csv(path)
        assert list(rows.columns) == MANIFEST_COLUMNS
        assert len(rows) and set(rows["depot_id"]) == {path.stem}
        assert set(rows["wholesaler"]) == {depots.loc[path.stem, "wholesaler"]}
        assert (rows["officine"] == rows["finess"].map(pharmacies["name"])).all()
        assert (rows["department"] == rows["finess"].map(pharmacies["department"])).all()
        assert (rows["product_code"] == rows["vaccine"].map(PRODUCT_CODES).fillna("")).all()
        assert (rows["vaccine_label"] == rows["vaccine"].map(labels)).all()
        assert set(rows["status"]) <= {"scheduled", "pending"}
        assert (rows["delivery_date"].eq("") == rows["status"].eq("pending")).all()


def test_r8_a_depots_manifest_rows_add_up_to_its_scheduled_deliveries_and_its_pending_vials(run):
    out, _ = run
    deliveries = read_csv(out / "deliveries.csv").astype({"vials": int})
    manifest = pd.concat([read_csv(p) for p in manifest_files(out) if p.suffix == ".csv"]).astype({"vials": int})
    assert manifest["status"].eq("pending").any()  # the fixtures leave vials waiting for a date
    keys = ["depot_id", "status", "delivery_date", "finess", "vaccine"]
    expected = deliveries.groupby(keys)["vials"].sum()
    assert manifest.groupby(keys)["vials"].sum().to_dict() == expected.to_dict()
    served = deliveries.groupby(keys)["order_id"].agg(lambda ids: sorted(set(ids)))
    assert manifest.set_index(keys)["order_ids"].str.split(" ").map(sorted).to_dict() == served.to_dict()


def test_each_manifest_twin_opens_with_the_csvs_rows_dates_as_dates_and_ids_as_text(run):
    out, _ = run
    for path in manifest_files(out):
        if path.suffix != ".xlsx":
            continue
        rows = read_csv(path.with_suffix(".csv"))
        sheet = openpyxl.load_workbook(path).worksheets[0]
        cells = list(sheet.iter_rows(values_only=True))
        assert list(cells[0]) == MANIFEST_COLUMNS  # the CSV's headings
        assert len(cells) - 1 == len(rows)
        for row, expected in zip(cells[1:], rows.itertuples(index=False)):
            cell = dict(zip(MANIFEST_COLUMNS, row))
            for name in MANIFEST_COLUMNS:
                wanted = getattr(expected, name)
                if name == "delivery_date":
                    assert cell[name] == (dt.datetime.fromisoformat(wanted) if wanted else None)
                elif name in ("vials", "boxes"):
                    assert cell[name] == int(wanted)
                else:  # FINESS, department, product code, order ids: text, leading zeros kept
                    assert cell[name] == (wanted or None), (path.name, name)
        formats = {sheet.cell(row=n, column=1).number_format for n in range(2, len(cells) + 1)
                   if sheet.cell(row=n, column=1).value is not None}
        assert formats == {"dd/mm/yyyy"}
