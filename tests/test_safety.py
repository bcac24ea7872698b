"""Written files stay in their folder whatever the data names them, and formulas reach no spreadsheet."""

from __future__ import annotations

import datetime as dt
import shutil

import numpy as np
import openpyxl
import pandas as pd
import pytest

from pipeline.adapters.files.outputs import write_manifests
from pipeline.adapters.files.safety import UnsafePath, inside, spreadsheet_text
from pipeline.adapters.mail.sink import save_message
from tests.conftest import FIXTURE, vialflow

ESCAPE = "../../../tmp/trav-escape"


# -- inside --------------------------------------------------------------------------------------------------

def test_a_depot_file_is_placed_below_its_wholesaler_folder(tmp_path):
    assert inside(tmp_path, "ocp", "D-OCP-69.csv") == tmp_path.resolve() / "ocp" / "D-OCP-69.csv"


def test_a_depot_id_climbing_out_of_the_manifests_folder_is_refused_and_named(tmp_path):
    folder = tmp_path / "out" / "runs" / "1" / "manifests"
    with pytest.raises(UnsafePath, match="trav-escape") as refused:
        inside(folder, "ocp", f"{ESCAPE}.csv")
    assert "\n" not in str(refused.value)
    assert isinstance(refused.value, ValueError)


def test_dot_dots_that_come_back_inside_are_accepted(tmp_path):
    assert inside(tmp_path, "a/../b.csv") == tmp_path.resolve() / "b.csv"


@pytest.mark.parametrize("part", ["/tmp/trav-escape.csv", "/", "//etc/passwd"])
def test_an_absolute_part_is_refused(tmp_path, part):
    with pytest.raises(UnsafePath):
        inside(tmp_path, "ocp", part)


@pytest.mark.parametrize("parts", [("",), ("ocp", ""), (".",), ("..",), ("a\0b.csv",), ()])
def test_empty_parts_nul_bytes_and_the_folder_itself_are_refused(tmp_path, parts):
    with pytest.raises(UnsafePath):
        inside(tmp_path, *parts)


def test_a_symlink_pointing_out_of_the_folder_is_refused(tmp_path):
    folder, elsewhere = tmp_path / "manifests", tmp_path / "elsewhere"
    folder.mkdir(), elsewhere.mkdir()
    (folder / "ocp").symlink_to(elsewhere, target_is_directory=True)
    (folder / "D-1.csv").symlink_to(elsewhere / "D-1.csv")  # dangling: would create the file out there
    with pytest.raises(UnsafePath):
        inside(folder, "ocp", "D-OCP-69.csv")
    with pytest.raises(UnsafePath):
        inside(folder, "D-1.csv")


def test_a_symlink_staying_inside_the_folder_is_followed(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "alias").symlink_to(tmp_path / "real", target_is_directory=True)
    assert inside(tmp_path, "alias", "x.csv") == tmp_path.resolve() / "real" / "x.csv"


def test_the_folder_itself_may_be_reached_through_a_symlink(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real", target_is_directory=True)
    assert inside(tmp_path / "link", "x.csv") == tmp_path.resolve() / "real" / "x.csv"


# -- spreadsheet_text ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["=HYPERLINK(\"http://x\")", "+33 1 23", "-2+3", "@SUM(A1)", "\t=1", "\r=1"])
def test_each_formula_prefix_gets_an_apostrophe(text):
    assert spreadsheet_text(text) == "'" + text


@pytest.mark.parametrize("text", ["Pharmacie du Centre", "", "D-OCP-69", "a=b", "'=already"])
def test_a_normal_text_is_left_untouched(text):
    assert spreadsheet_text(text) == text


def test_a_text_column_is_defused_and_its_other_values_are_left_alone():
    column = pd.Series(["=1+2", "Pharmacie du Centre", None, "@x"])
    assert spreadsheet_text(column).tolist()[:2] == ["'=1+2", "Pharmacie du Centre"]
    assert spreadsheet_text(column).tolist()[3] == "'@x"
    assert pd.isna(spreadsheet_text(column)[2])
    assert column[0] == "=1+2"  # the input frame is never changed


def test_numbers_in_a_mixed_column_and_numeric_columns_are_not_touched():
    mixed = pd.Series(["-x", -5, np.nan], dtype=object)
    assert spreadsheet_text(mixed).tolist()[:2] == ["'-x", -5]
    numbers = pd.Series([-5, 3])
    assert spreadsheet_text(numbers).tolist() == [-5, 3]
    assert spreadsheet_text(numbers).dtype == numbers.dtype


def test_a_whole_frame_is_defused_column_by_column():
    frame = pd.DataFrame({"officine": ["=cmd|' /C calc'!A0", "Pharmacie"], "vials": [-1, 2]})
    safe = frame.apply(spreadsheet_text)
    assert safe["officine"].tolist() == ["'=cmd|' /C calc'!A0", "Pharmacie"]
    assert safe["vials"].tolist() == [-1, 2]


# -- the mail sink -------------------------------------------------------------------------------------------

def message(session: str, run: str, recipient: str) -> bytes:
    return (f"X-Vialflow-Session: {session}\r\nX-Vialflow-Run: {run}\r\n"
            f"X-Vialflow-Recipient: {recipient}\r\nSubject: x\r\n\r\nbody\r\n").encode()


@pytest.mark.parametrize("headers", [(ESCAPE, "1", "690000000"), ("s", "../../x", "690000000"),
                                     ("s", "1", "/etc/passwd"), ("..", "..", ".."), ("", "", "")])
def test_no_header_value_puts_a_message_outside_the_mail_folder(tmp_path, headers):
    folder = tmp_path / "mail"
    for overwrite in (False, True):
        path = save_message(folder, message(*headers), overwrite=overwrite)
        assert path.parent == folder.resolve()
    # the second call replaced the first copy, so one file, and nothing anywhere else
    assert [p.parent for p in tmp_path.rglob("*") if p.is_file()] == [folder]


def test_a_symlink_planted_in_the_mail_folder_is_not_written_through(tmp_path):
    folder, target = tmp_path / "mail", tmp_path / "victim"
    folder.mkdir()
    target.write_text("kept")
    (folder / "s-r1-x.eml").symlink_to(target)
    for overwrite in (False, True):
        with pytest.raises(UnsafePath):
            save_message(folder, message("s", "1", "x"), overwrite=overwrite)
    assert target.read_text() == "kept"


# -- the manifests, and the whole run ------------------------------------------------------------------------


def rounds(*officines: str) -> pd.DataFrame:
    n = len(officines)
    return pd.DataFrame({"delivery_date": ["2021-06-21"] * n, "finess": [f"69000000{k}" for k in range(n)],
                         "officine": list(officines), "vaccine": ["janssen"] * n, "vials": [-1 + 0 * k for k in range(n)],
                         "boxes": [1] * n, "depot_id": ["D-1"] * n, "wholesaler": ["OCP Répartition"] * n,
                         "department": ["69"] * n, "vaccine_label": ["+Janssen"] * n, "product_code": [""] * n,
                         "order_ids": [f"A-{k}" for k in range(n)], "status": ["scheduled"] * n})


def depots(depot_id: str = "D-1") -> pd.DataFrame:
    return pd.DataFrame({"depot_id": [depot_id], "wholesaler": ["OCP Répartition"], "name": ["dépôt"],
                         "capacity_vials": [10], "weekdays": ["Mon-Fri"]})


def manifests(frame: pd.DataFrame, depot_frame: pd.DataFrame, folder) -> dict:
    return write_manifests(frame, depot_frame, folder, session="2021-06-14", run=1,
                           created=dt.datetime(2021, 6, 18, 9, tzinfo=dt.timezone.utc))


def test_an_officine_named_like_a_formula_reaches_the_wholesaler_s_manifest_and_its_twin_as_text(tmp_path):
    manifests(rounds('=HYPERLINK("http://x.example/?a")', "@SUM(A1:A9)", "Pharmacie du Centre"), depots(), tmp_path)
    text = (tmp_path / "ocp-repartition" / "D-1.csv").read_text(encoding="utf-8").splitlines()
    tail = "D-1,OCP Répartition,69,'+Janssen,"
    assert text[0].startswith("delivery_date,finess,officine,vaccine,vials,boxes,")
    assert text[1] == f'2021-06-21,690000000,"\'=HYPERLINK(""http://x.example/?a"")",janssen,-1,1,{tail},A-0,scheduled'
    assert text[2] == f"2021-06-21,690000001,'@SUM(A1:A9),janssen,-1,1,{tail},A-1,scheduled"
    assert text[3] == f"2021-06-21,690000002,Pharmacie du Centre,janssen,-1,1,{tail},A-2,scheduled"
    sheet = openpyxl.load_workbook(tmp_path / "ocp-repartition" / "D-1.xlsx").worksheets[0]
    cells = [cell for row in sheet.iter_rows(min_row=2) for cell in row if cell.value is not None]
    assert [c.value for c in cells if c.column_letter == "C"] == [
        '\'=HYPERLINK("http://x.example/?a")', "'@SUM(A1:A9)", "Pharmacie du Centre"]
    assert {c.value for c in cells if c.column_letter == "J"} == {"'+Janssen"}
    assert all(cell.data_type != "f" for cell in cells)


def test_the_manifest_writer_refuses_a_depot_id_that_climbs_out_whatever_the_reader_let_through(tmp_path):
    folder = tmp_path / "out" / "manifests"
    with pytest.raises(UnsafePath, match="trav-escape"):
        manifests(rounds("Pharmacie"), depots(ESCAPE), folder)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []




def test_a_depot_id_of_dot_dots_stops_the_run_in_one_line_and_writes_nothing_anywhere(tmp_path):
    scenario = tmp_path / "scenario"
    shutil.copytree(FIXTURE, scenario)
    escape = f"../../../{tmp_path.name}/trav-escape"
    for name in ("depots.csv", "pharmacies.csv"):
        path = scenario / name
        path.write_text(path.read_text(encoding="utf-8").replace("D-OCP-69", escape), encoding="utf-8")
    done = vialflow("run", str(scenario), "--out", str(tmp_path / "out"))
    assert done.returncode != 0
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert "depots.csv: line 2, field depot_id" in done.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    assert not list(tmp_path.rglob("trav-escape*"))  # where its dot-dots lead from the run folder


def test_r9_a_run_whose_officine_is_named_like_a_formula_defuses_it_in_the_manifest_only(tmp_path):
    scenario = tmp_path / "scenario"
    shutil.copytree(FIXTURE, scenario)
    name, hostile = "Pharmacie de la Gare Morel", "=HYPERLINK(\"\"http://x.example\"\",\"\"Gare\"\")"
    path = scenario / "pharmacies.csv"
    path.write_text(path.read_text(encoding="utf-8").replace(name, f'"{hostile}"'), encoding="utf-8")
    out = tmp_path / "out"
    done = vialflow("run", str(scenario), "--out", str(out))
    assert done.returncode == 0, done.stderr
    manifest = (out / "manifests" / "ocp-repartition" / "D-OCP-69.csv").read_text(encoding="utf-8")
    assert "'=HYPERLINK(" in manifest and ",=HYPERLINK(" not in manifest and ',"=HYPERLINK(' not in manifest
    # The machine-read files stay exact: allocations.csv has the same bytes as with the plain name.
    plain = tmp_path / "plain"
    assert vialflow("run", str(FIXTURE), "--out", str(plain)).returncode == 0
    for file in ("allocations.csv", "deliveries.csv", "rejections.csv"):
        assert (out / file).read_bytes() == (plain / file).read_bytes()
