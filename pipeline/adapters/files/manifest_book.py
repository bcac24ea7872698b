"""A depot's dispatch file as a workbook French Excel opens as it is: the CSV's rows and headings, dates as
dates, counts as numbers, every id as text (a FINESS or a department keeps its leading 0)."""

from __future__ import annotations

import datetime as dt
import functools
import io

import pandas as pd
import xlsxwriter

SHEET, LEGEND = "Livraisons", "Colonnes"
# Each column of MANIFEST_COLUMNS: its width in characters and what it holds, in French for the legend
# sheet. The headings stay the contract's names, so that a program reading the twin finds the CSV's columns.
COLUMNS = {
    "delivery_date": (12, "Date de livraison prévue (vide : date communiquée ultérieurement)"),
    "finess": (11, "FINESS de l'officine livrée"),
    "officine": (34, "Officine livrée"),
    "vaccine": (12, "Vaccin (code de la session)"),
    "vials": (8, "Flacons"),
    "boxes": (8, "Boîtes"),
    "depot_id": (11, "Dépôt qui livre"),
    "wholesaler": (24, "Grossiste-répartiteur"),
    "department": (11, "Département de l'officine"),
    "vaccine_label": (14, "Vaccin"),
    "product_code": (15, "Code produit (CIP13 ou GTIN)"),
    "order_ids": (30, "Commandes servies par cette ligne, séparées par des espaces"),
    "status": (10, "scheduled : livraison datée ; pending : en attente d'une date de livraison"),
}
NUMBERS = ("vials", "boxes")


def manifest_book(rows: pd.DataFrame, title: str, created: dt.datetime) -> bytes:
    """The .xlsx bytes of a depot's manifest `rows` (MANIFEST_COLUMNS, delivery_date as YYYY-MM-DD or
    empty); `created` (naive UTC or aware) is the stamp in the file's properties, not the clock."""
    out = io.BytesIO()
    book = xlsxwriter.Workbook(out, {"in_memory": True})
    if created.tzinfo is not None:
        created = created.astimezone(dt.timezone.utc).replace(tzinfo=None)
    book.set_properties({"title": f"Bon de livraison – {title}", "author": "vialflow", "created": created})
    heading = book.add_format({"bold": True, "bg_color": "#E8EDF3", "border": 1})
    day = book.add_format({"num_format": "dd/mm/yyyy"})
    count = book.add_format({"align": "right", "indent": 1})  # not against the next column's text
    sheet = book.add_worksheet(SHEET)
    columns = list(COLUMNS)
    for number, name in enumerate(columns):
        sheet.set_column(number, number, COLUMNS[name][0])
        sheet.write_string(0, number, name, heading)
    # Column by column, each cell its own type: a text never becomes a number, a formula or a link.
    for number, name in enumerate(columns):
        values = rows[name].tolist()
        if name == "delivery_date":
            for row, value in enumerate(values, start=1):
                if value:
                    sheet.write_datetime(row, number, _day(value), day)
        elif name in NUMBERS:
            for row, value in enumerate(values, start=1):
                sheet.write_number(row, number, int(value), count)
        else:
            for row, value in enumerate(values, start=1):
                if isinstance(value, str) and value:
                    sheet.write_string(row, number, value)
    sheet.freeze_panes(1, 0)
    sheet.autofilter(0, 0, max(len(rows), 1), len(columns) - 1)
    sheet.repeat_rows(0)
    sheet.set_header(f"&L{_escaped(title)}&RPage &P / &N")
    legend = book.add_worksheet(LEGEND)
    for page in (sheet, legend):  # printed on A4, landscape, as wide as one page
        page.set_landscape()
        page.set_paper(9)
        page.fit_to_pages(1, 0)
    legend.set_column(0, 0, 16)
    legend.set_column(1, 1, 80)
    legend.write_string(0, 0, "Colonne", heading)
    legend.write_string(0, 1, "Contenu", heading)
    for row, name in enumerate(columns, start=1):
        legend.write_string(row, 0, name)
        legend.write_string(row, 1, COLUMNS[name][1])
    book.close()
    return out.getvalue()


@functools.lru_cache(maxsize=1024)
def _day(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def _escaped(text: str) -> str:
    """Text for a page header, short enough, where `&` starts a control code."""
    return text[:200].replace("&", "&&")  # Excel's header holds 255 characters
