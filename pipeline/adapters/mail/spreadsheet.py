"""confirmation.xlsx: the recipient's lines as a spreadsheet French Excel opens as it is (R9, R10).

`confirmation.csv` is the contract's file for programs (`,`, no BOM: one column and broken accents in
a French Excel); this one is for people: French headings, dates as dates, counts as numbers, ids as
text (a FINESS keeps its leading 0). Written by XlsxWriter in memory, about a millisecond an email.
"""

from __future__ import annotations

import datetime as dt
import io

import xlsxwriter

from .mime import clean

SHEET = "Confirmation"
# (heading, width in characters)
COLUMNS = (("Commande", 12), ("Effecteur", 20), ("Professionnel", 24), ("RPPS", 13), ("Vaccin", 12),
           ("Injection", 13), ("Flacons demandés", 10), ("Flacons servis", 10), ("Statut", 18), ("Motif", 30),
           ("Date de livraison", 13), ("Flacons de la livraison", 10), ("Grossiste-répartiteur (dépôt)", 34),
           ("Rendez-vous à partir du", 13), ("Non récupérés : proposables à partir du", 15),
           ("Redistribution", 50))
SHORT_REASONS = {"cap": "plafond atteint", "unit": "arrondi à la boîte entière", "supply": "volume disponible épuisé",
                 "eligibility": "vaccin non ouvert à cet effecteur", "window": "hors période de commande",
                 "zone": "hors zone de la session", "not_attached": "professionnel non rattaché à l'officine",
                 "unknown_pharmacy": "officine inconnue", "unknown_professional": "professionnel inconnu",
                 "cancelled": "commande annulée"}


def workbook(rows: list[tuple], created: dt.datetime) -> bytes:
    """The .xlsx bytes of `rows`, each a tuple as COLUMNS: text (str), counts (int), dates (datetime.date),
    or None for an empty cell. `created` (naive, UTC) is stamped in the file instead of the clock: the
    same rows give the same bytes."""
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
                sheet.write_string(number, column, clean(value))  # text stays text: no formula, no number
            elif isinstance(value, int):
                sheet.write_number(number, column, value)
            else:
                sheet.write_datetime(number, column, value, day)
    sheet.freeze_panes(1, 1)
    sheet.autofilter(0, 0, max(len(rows), 1), len(COLUMNS) - 1)
    book.close()
    return out.getvalue()
