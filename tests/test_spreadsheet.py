"""confirmation.xlsx written from XlsxWriter's template is the file XlsxWriter wrote whole for every email.

`reference` below is the former `spreadsheet.workbook` (every part by XlsxWriter): both files are read back
with openpyxl and compared as a person sees them, and their zip members compared as bytes where they must be
the same.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import xml.etree.ElementTree as ElementTree
import zipfile

import openpyxl
import pytest
import xlsxwriter
from hypothesis import given, settings, strategies as st

from pipeline.adapters.mail.mime import clean
from pipeline.adapters.mail.spreadsheet import COLUMNS, SHEET, workbook

CREATED = dt.datetime(2021, 6, 18, 9, 30, 5)
D = dt.date
LAST = xlsxwriter.utility.xl_col_to_name(len(COLUMNS) - 1)  # the last heading's column


def reference(rows: list[tuple], created: dt.datetime) -> bytes:
    """The former spreadsheet.workbook: the whole file by XlsxWriter."""
    out = io.BytesIO()
    book = xlsxwriter.Workbook(out, {"in_memory": True})
    book.set_properties({"created": created, "title": "Confirmation de commande de vaccins", "author": "vialflow"})
    heading = book.add_format({"bold": True, "text_wrap": True, "valign": "top", "bg_color": "#E8EDF3",
                               "border": 1})
    day = book.add_format({"num_format": "dd/mm/yyyy"})
    sheet = book.add_worksheet(SHEET)
    for column, (title, width) in enumerate(COLUMNS):
        sheet.set_column(column, column, width)
        sheet.write_string(0, column, title, heading)
    sheet.set_row(0, 45)
    for number, row in enumerate(rows, start=1):
        for column, value in enumerate(row):
            if value is None or value == "":
                continue
            if isinstance(value, str):
                sheet.write_string(number, column, clean(value))
            elif isinstance(value, int):
                sheet.write_number(number, column, value)
            else:
                sheet.write_datetime(number, column, value, day)
    sheet.freeze_panes(1, 1)
    sheet.autofilter(0, 0, max(len(rows), 1), len(COLUMNS) - 1)
    book.close()
    return out.getvalue()


def row(*values) -> tuple:
    """A row of len(COLUMNS) values: `values`, then empty cells."""
    return (*values, *(None,) * (len(COLUMNS) - len(values)))


TYPICAL = row("A-000001-0", "médecin", "Dr Élodie Lefèvre", "10100123456", "AstraZeneca", "1re injection", 8, 5,
              "partiellement servie", "plafond de 5 flacons atteint", D(2021, 6, 24), 3, "OCP Répartition (dépôt 69)",
              D(2021, 6, 25), D(2021, 7, 1), "")
CASES = {
    "zero rows": [],
    "one row": [TYPICAL],
    "typical": [TYPICAL, row("A-000001-0", "médecin", "Dr Élodie Lefèvre", "10100123456", "AstraZeneca",
                             "1re injection", 8, 5, "partiellement servie", "plafond de 5 flacons atteint",
                             "date communiquée ultérieurement", 2, "OCP Répartition (dépôt 69)"),
                row("010023456", "pharmacien", None, "", "Janssen", "1re injection", 10, 0, "refusée",
                    "volume disponible épuisé")],
    "xml and formulas": [row('<b>&amp; "quoted" \'single\'</b>', "a < b > c & d", '=HYPERLINK("http://x")',
                             "+33 1 23", "-1", "@SUM(A1)", "]]>", "&#x41;")],
    "accents and beyond the BMP": [row("Noël Dupré", "Ĳssel – “Œuvre” ß ŀ", "日本語", "🙂 vaccin 💉",
                                       "é" * 100)],
    "control characters and spaces": [row("a\tb\nc\rd", "\x00\x01\x1f\x7f\x85", "  lead and trail  ",
                                          "\u2028line\u2029paragraph", "   ", "\xa0nbsp\xa0", "x\u200by")],
    "empty strings, None and zeros": [row("", None, 0, 0, "", None, 0), row(), row(None, None, None, 1)],
    "numbers": [row(True, False, -5, 2 ** 31, 10 ** 15, 10 ** 17, -(10 ** 20))],
    "dates": [row(D(2021, 6, 17), D(1900, 1, 1), D(1900, 2, 28), D(1900, 3, 1), D(9999, 12, 31),
                  dt.datetime(2021, 6, 17, 12, 30, 15), D(2000, 2, 29), dt.datetime(1900, 1, 1, 6),
                  dt.datetime(1900, 2, 28, 23), dt.datetime(1899, 12, 31, 12))],
    "long text": [row("x" * 40_000, "é" * 32_766 + "🙂", "y" * 32_767, ("mot " * 5_000).strip())],
    "a row empty in the middle": [TYPICAL, row(), TYPICAL],
    "empty last rows": [TYPICAL, row(), row(None, "")],
    "many rows": [row(f"A-{n:06d}", "pharmacien", "", "", "Moderna", "1re injection", n, n, "servie", "",
                      D(2021, 6, 17) + dt.timedelta(days=n % 9), n) for n in range(300)],
}


def cells(sheet) -> dict:
    return {cell.coordinate: (cell.value, cell.data_type, cell.number_format)
            for line in sheet.iter_rows() for cell in line if cell.value is not None}


def look(data: bytes) -> dict:
    """What a person sees of the file, as openpyxl reads it."""
    book = openpyxl.load_workbook(io.BytesIO(data))
    sheet = book.active
    heading = [(cell.value, cell.font.b, cell.fill.fill_type, cell.fill.fgColor.rgb, cell.alignment.wrap_text,
                cell.alignment.vertical, cell.border.left.style, cell.border.right.style, cell.border.top.style,
                cell.border.bottom.style) for cell in sheet[1]]
    widths = {key: (dimension.min, dimension.max, dimension.width, dimension.customWidth)
              for key, dimension in sheet.column_dimensions.items()}
    properties = book.properties
    return {"sheets": book.sheetnames, "title": sheet.title, "dimensions": sheet.dimensions, "cells": cells(sheet),
            "heading": heading, "widths": widths, "height": (sheet.row_dimensions[1].height,
                                                             sheet.row_dimensions[1].customHeight),
            "other heights": {n: d.height for n, d in sheet.row_dimensions.items() if n != 1 and d.height},
            "panes": sheet.freeze_panes, "autofilter": sheet.auto_filter.ref,
            "properties": (properties.title, properties.creator, properties.created, properties.modified,
                           properties.lastModifiedBy)}


def members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
        return {info.filename: archive.read(info) for info in archive.infolist()}


@pytest.mark.parametrize("case", CASES)
def test_the_file_reads_as_the_one_xlsxwriter_wrote(case):
    rows = CASES[case]
    new, old = look(workbook(rows, CREATED)), look(reference(rows, CREATED))
    assert new == old
    assert new["title"] == SHEET and new["panes"] == "B2" and new["height"] == (45, True)
    assert new["properties"][:3] == ("Confirmation de commande de vaccins", "vialflow", CREATED)
    assert new["autofilter"] == f"A1:{LAST}{max(len(rows), 1) + 1}"
    assert all(bold and fill == "solid" and color == "FFE8EDF3" and wrap and top == "top"
               and {left, right, upper, bottom} == {"thin"}
               for _, bold, fill, color, wrap, top, left, right, upper, bottom in new["heading"])
    assert [title for title, *_ in new["heading"]] == [title for title, _ in COLUMNS]


@pytest.mark.parametrize("case", CASES)
def test_the_zip_is_sound_its_xml_parses_and_the_parts_that_never_change_are_xlsxwriters(case):
    rows = CASES[case]
    new, old = members(workbook(rows, CREATED)), members(reference(rows, CREATED))
    assert new.keys() == old.keys()
    for name, data in new.items():
        ElementTree.fromstring(data)
    # the sheet's strings are inline: sharedStrings.xml holds the headings only; the rest is XlsxWriter's,
    # styles.xml as XlsxWriter writes it for rows with a date (without one it leaves the unused date format out)
    same = set(new) - {"xl/worksheets/sheet1.xml", "xl/sharedStrings.xml", "xl/styles.xml"}
    assert {name: new[name] for name in same} == {name: old[name] for name in same}
    assert new["xl/styles.xml"] == members(reference([TYPICAL], CREATED))["xl/styles.xml"]
    assert b"<si><t>" + COLUMNS[-1][0].encode() + b"</t></si></sst>" in new["xl/sharedStrings.xml"]
    with zipfile.ZipFile(io.BytesIO(workbook(rows, CREATED))) as archive:
        for info in archive.infolist():
            assert (info.date_time, info.compress_type, info.external_attr >> 16) == (
                (1980, 1, 1, 0, 0, 0), zipfile.ZIP_DEFLATED, 0o600)


def test_the_filter_database_name_follows_the_rows_as_xlsxwriter_writes_it():
    for rows in ([], [TYPICAL], [TYPICAL] * 12):
        book = members(workbook(rows, CREATED))["xl/workbook.xml"].decode()
        assert (f'<definedName name="_xlnm._FilterDatabase" localSheetId="0" hidden="1">'
                f"Confirmation!$A$1:${LAST}${max(len(rows), 1) + 1}</definedName>") in book


def test_text_stays_text_escaped_as_xlsxwriter_escapes_it():
    texts = ('=HYPERLINK("x")', "_x0041_ stays itself", "_X00e9_ and _x12_", "<&>\"'", "\ufffe\uffff")
    new = members(workbook([row(*texts)], CREATED))["xl/worksheets/sheet1.xml"].decode()
    old = members(reference([row(*texts)], CREATED))["xl/sharedStrings.xml"].decode()
    written = re.findall(r'<c r="[A-Z]+2" t="inlineStr"><is><t>([^<]*)</t></is></c>', new)
    assert written == re.findall(r"<si><t>([^<]*)</t></si>", old)[len(COLUMNS):]
    assert written[1] == "_x005F_x0041_ stays itself" and written[4] == "_xFFFE__xFFFF_"
    assert "<f>" not in new


def test_the_same_rows_give_the_same_bytes_and_only_core_xml_follows_the_creation_date():
    rows = CASES["typical"]
    assert workbook(rows, CREATED) == workbook(list(rows), CREATED)
    first, later = members(workbook(rows, CREATED)), members(workbook(rows, CREATED + dt.timedelta(days=1)))
    assert {name for name in first if first[name] != later[name]} == {"docProps/core.xml"}
    assert b"2021-06-19T09:30:05Z" in later["docProps/core.xml"]


def test_a_value_that_is_no_text_count_or_date_is_refused():
    with pytest.raises(TypeError):
        workbook([row(1.5)], CREATED)


values = st.one_of(
    st.none(), st.just(""), st.integers(min_value=-(10 ** 12), max_value=10 ** 12),
    st.dates(min_value=D(1900, 3, 1), max_value=D(2100, 12, 31)),
    # openpyxl reads `_xHHHH_` back unescaped from shared strings only: compared above, at the XML level
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=40).filter(
        lambda text: re.search("_x[0-9a-fA-F]{4}_", text) is None))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(values, min_size=len(COLUMNS), max_size=len(COLUMNS)).map(tuple), max_size=6))
def test_any_rows_read_as_the_ones_xlsxwriter_wrote(rows):
    assert look(workbook(rows, CREATED)) == look(reference(rows, CREATED))
