"""confirmation.xlsx: the recipient's lines as a spreadsheet French Excel opens as it is (R9, R10).

`confirmation.csv` is the contract's file for programs (`,`, no BOM: one column and broken accents in
a French Excel); this one is for people: French headings, dates as dates, counts as numbers, ids as
text (a FINESS keeps its leading 0).

Why part of the file is written by hand: XlsxWriter writing the whole workbook for every email cost
1,600 µs of CPU per file, 85 % of rendering a whole email (one process capped near 500 emails/s). Its
generic machinery builds, XML-writes and compresses ten zip members per file (theme, styles, content
types, properties...) although only three change from one email to the next. So XlsxWriter still writes
every part, but once per process: `_template` builds a workbook with the same calls as before. Its
constant members (styles with the heading and date formats, theme, content types, relationships,
app.xml, the shared strings of the headings) are kept as compressed zip records, and the constant pieces
of its sheet (views with the frozen panes, column widths, the heading row 45 points high, page margins)
as text. Per file, only what varies is written here: the data rows (strings inline, escaped as
XlsxWriter escapes them), the sheet's dimension and autofilter range, the `_xlnm._FilterDatabase` name in
workbook.xml, the creation date in core.xml, and the zip records of those three members (see `_archive`
for why these are not written by `zipfile`). The cost was then 135 µs of CPU per file, 12x less; with
each distinct cell written once per process, the sheet deflated at level 1 and its constant head
deflated once (`_sheet`), 105 µs where the same run's previous code took 161 µs, with 20 columns
(`python -m bench mail --count 2000 --naive 50 --repeat 2`, line "xlsx"). tests/test_spreadsheet.py
compares the files with XlsxWriter's whole-workbook output, reading both with openpyxl.
"""

from __future__ import annotations

import datetime as dt
import functools
import io
import re
import struct
import zipfile
import zlib

import xlsxwriter
from xlsxwriter.utility import xl_col_to_name

from .mime import clean

SHEET = "Confirmation"
# (heading, width in characters)
COLUMNS = (("Commande", 12), ("Effecteur", 20), ("Professionnel", 24), ("RPPS", 13), ("Vaccin", 12),
           ("Injection", 13), ("Flacons demandés", 10), ("Flacons servis", 10), ("Statut", 18), ("Motif", 30),
           ("Date de livraison", 13), ("Flacons de la livraison", 10), ("Grossiste-répartiteur (dépôt)", 34),
           ("Rendez-vous à partir du", 13), ("Non récupérés : proposables à partir du", 15),
           ("Redistribution", 50),
           # Added after the first columns, which keep their place: the delivery's status (a pending remainder
           # has no date: the date column holds dates only), and the doses beside the vials (R9).
           ("Statut de la livraison", 18), ("Doses demandées", 10), ("Doses servies", 10),
           ("Doses de la livraison", 10))
TITLE = "Confirmation de commande de vaccins"
AUTHOR = "vialflow"

_SHEET_XML = b"xl/worksheets/sheet1.xml"
_BOOK_XML = b"xl/workbook.xml"
_CORE_XML = b"docProps/core.xml"
_STAMP = "%Y-%m-%dT%H:%M:%SZ"  # docProps/core.xml's dates, as XlsxWriter writes them
_PLACEHOLDER = dt.datetime(2000, 1, 1)  # the template's creation date, replaced by each file's
_EPOCH = dt.datetime(1899, 12, 31)  # Excel's day 0 (1900 date system)
_MAX_UNITS = 32767  # Excel's longest string, in UTF-16 units: XlsxWriter cuts longer strings there
_LETTERS = tuple(xl_col_to_name(column) for column in range(len(COLUMNS)))
# What XlsxWriter escapes in a string cell: XML's & < >, Excel's own `_xHHHH_` escape (so a literal
# `_x0041_` stays itself), the control characters clean() has already replaced, and two non-characters.
_SPECIAL = re.compile("[&<>\x00-\x08\x0b-\x1f\ufffe\uffff]|_x[0-9a-fA-F]{4}_")
_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


def workbook(rows: list[tuple], created: dt.datetime) -> bytes:
    """The .xlsx bytes of `rows`, each a tuple as COLUMNS: text (str), counts (int), dates (datetime.date),
    or None for an empty cell. `created` (naive, UTC) is stamped in the file instead of the clock: the
    same rows give the same bytes."""
    template = _template()
    cell, width = template.cell, len(_LETTERS)
    cells = []  # the sheet's rows, then its tail
    last_row, last_column = 1, len(COLUMNS) - 1
    for number, row in enumerate(rows, start=2):
        if len(row) > width:  # more columns than the headings: a letter past the template's
            last_column = max(last_column, max((column for column, value in enumerate(row)
                                                if value is not None and value != ""), default=0))
        written = "".join([cell(column, value) if value.__class__ is not str or len(value) <= 200
                           else _cell(template, column, value)  # long text: not kept in memory
                           for column, value in enumerate(row) if value is not None and value != ""])
        if written:  # no cell: no <row>, as XlsxWriter
            cells.append(f'<row r="{number}">{written.replace(_ROW, str(number))}</row>')
            last_row = number
    filtered = max(len(rows), 1) + 1  # the autofilter: the headings and every row, at least one
    cells.append(f"{template.sheet[2]}{filtered}{template.sheet[3]}")
    return _archive(template, (
        _deflated_small(_BOOK_XML, f"{template.book[0]}{filtered}{template.book[1]}".encode()),
        _sheet(template, f"{xl_col_to_name(last_column)}{last_row}".encode(), "".join(cells).encode()),
        _deflated_small(_CORE_XML, created.strftime(_STAMP).join(template.core).encode())))


# The sheet is deflated at level 1: on the typical email its 7.6 KB of XML took 66 µs of CPU at zlib's default
# level and take 38 µs at level 1, for 134 bytes more (1.63 KB instead of 1.50 KB); any level inflates to the
# same XML. (workbook.xml and core.xml are deflated at the default level, once per distinct text.)
_SHEET_LEVEL = 1
_ROW = "\x00"  # where a cell's row number goes: clean() and the escapes leave no NUL in a cell's text


def _cell(template: _Template, column: int, value) -> str:
    """One cell's XML with `_ROW` for its row number: the same labels, names, counts and dates recur from
    row to row and from file to file, so each distinct (column, value) is written once (`_Template.cell`)."""
    letter = _LETTERS[column] if column < len(_LETTERS) else xl_col_to_name(column)
    if isinstance(value, str):  # text stays text: no formula, no number
        return f'<c r="{letter}{_ROW}" t="inlineStr"><is><t>{_text(value)}</t></is></c>'
    if isinstance(value, int):
        return f'<c r="{letter}{_ROW}"><v>{value:.16G}</v></c>'
    return f'<c r="{letter}{_ROW}" s="{template.day_style}"><v>{_serial(value)}</v></c>'


# The zip records around the members are written here rather than by `zipfile`. Appending the three
# members with `zipfile.ZipFile(copy of the template, "a")` took 200 µs a file instead of 115: it reads back
# the template's directory, then frames each member through its generic file machinery, and it cannot
# reuse an already deflated workbook.xml or core.xml. The records are the ones `zipfile` writes for XlsxWriter
# (APPNOTE.TXT 4.3: version 2.0, deflated, no data descriptor, dated 1980-01-01 00:00, mode 0600 from Unix);
# tests/test_spreadsheet.py reads every file back with `zipfile` (testzip) and openpyxl.
_LOCAL = struct.Struct("<IHHHHHIIIHH")  # local file header, then name and data
_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")  # central directory file header, then name
_END = struct.Struct("<IHHHHIIH")  # end of central directory record
_DOS_DATE = (0 << 9) | (1 << 5) | 1  # 1980-01-01; time 00:00:00 is 0


def _archive(template: _Template, members: tuple) -> bytes:
    """The template's constant members, then `members` (name, CRC-32, size, deflated data), as a zip."""
    local, central, offset = [template.local], [template.central], len(template.local)
    for name, crc, size, data in members:
        local += (_LOCAL.pack(0x04034B50, 20, 0, 8, 0, _DOS_DATE, crc, len(data), size, len(name), 0), name, data)
        central += (_CENTRAL.pack(0x02014B50, (3 << 8) | 20, 20, 0, 8, 0, _DOS_DATE, crc, len(data), size,
                                  len(name), 0, 0, 0, 0, 0o600 << 16, offset), name)
        offset += _LOCAL.size + len(name) + len(data)
    directory = b"".join(central)
    count = template.count + len(members)
    return b"".join((*local, directory, _END.pack(0x06054B50, 0, 0, count, count, len(directory), offset, 0)))


def _sheet(template: _Template, dimension: bytes, rows: bytes) -> tuple[bytes, int, int, bytes]:
    """The sheet member: its constant head (up to the heading row, about 2.3 KB) is deflated once per
    process, in two pieces around the dimension's last cell. A deflate stream is a sequence of blocks
    (RFC 1951 3.2.3): each piece ends with a full flush (byte-aligned, no reference to what came before),
    so the pieces deflated once and those deflated per file follow one another in one stream."""
    compressor = zlib.compressobj(_SHEET_LEVEL, zlib.DEFLATED, -15)
    data = b"".join((template.sheet_start, compressor.compress(dimension), compressor.flush(zlib.Z_FULL_FLUSH),
                     template.sheet_head, compressor.compress(rows), compressor.flush()))
    crc = zlib.crc32(rows, zlib.crc32(template.head_text, zlib.crc32(dimension, template.start_crc)))
    return _SHEET_XML, crc, template.head_size + len(dimension) + len(rows), data


def _deflated(name: bytes, data: bytes) -> tuple[bytes, int, int, bytes]:
    """A member's name, CRC-32, size and data deflated as `zipfile` does (zlib's default level, raw)."""
    return name, zlib.crc32(data), len(data), zlib.compress(data, zlib.Z_DEFAULT_COMPRESSION, wbits=-15)


# workbook.xml changes only with the number of rows, core.xml with the creation date: mostly the same
_deflated_small = functools.lru_cache(maxsize=256)(_deflated)


def _text(value: str) -> str:
    """A string cell's <t> content: cleaned, cut at Excel's limit, escaped (clean() leaves no leading or
    trailing space, so no xml:space is needed)."""
    text = clean(value)
    if len(text) > _MAX_UNITS // 2:
        units = text.encode("utf-16-le", "surrogatepass")
        if len(units) > 2 * _MAX_UNITS:
            text = units[:2 * _MAX_UNITS].decode("utf-16-le", "surrogatepass")
            if "\ud800" <= text[-1] <= "\udbff":  # half a character above U+FFFF: not kept
                text = text[:-1]
    if _SPECIAL.search(text) is None:
        return text
    return _SPECIAL.sub(_escape, text)


def _escape(match: re.Match) -> str:
    found = match.group()
    if found in _ESCAPES:
        return _ESCAPES[found]
    if len(found) > 1:
        return "_x005F" + found
    return f"_x{ord(found):04X}_"


@functools.lru_cache(maxsize=4096)
def _serial(value: dt.date) -> str:
    """Excel's serial number of a date (or naive datetime), as XlsxWriter computes and writes it: days
    since 1899-12-31, plus one from 1900-03-01 on (Excel counts a 29 February 1900)."""
    if not isinstance(value, dt.date):
        raise TypeError(f"no spreadsheet cell for {value!r}: text, int, date or None")
    if isinstance(value, dt.datetime):
        delta = value - _EPOCH  # TypeError for an aware datetime, as XlsxWriter
        if value.isocalendar() == (1900, 1, 1):  # XlsxWriter reads this day's datetimes as times of day
            delta -= dt.timedelta(days=1)
    else:
        delta = dt.datetime(value.year, value.month, value.day) - _EPOCH
    serial = delta.days + (delta.seconds + delta.microseconds / 1e6) / 86400
    return f"{serial + 1 if serial > 59 else serial:.16G}"


class _Template:
    """The parts of confirmation.xlsx that never change, from XlsxWriter's workbook `archive`: the zip
    records of its constant members, and the varying members' text cut where the per-file values go."""

    def __init__(self, archive: bytes):
        varying = (_SHEET_XML.decode(), _BOOK_XML.decode(), _CORE_XML.decode())
        out = io.BytesIO()
        with zipfile.ZipFile(io.BytesIO(archive)) as source, zipfile.ZipFile(out, "w") as constant:
            texts = {name: source.read(name).decode("utf-8") for name in varying}
            for member in source.infolist():
                if member.filename not in varying:
                    constant.writestr(member, source.read(member))
        constant = out.getvalue()
        _, _, _, self.count, _, size, start, _ = _END.unpack(constant[-_END.size:])
        self.local, self.central = constant[:start], constant[start:start + size]
        sheet = texts[varying[0]]
        # <dimension ref="A1:P2"/> ... <sheetData>{heading row}<row r="2"...>{a date}</row></sheetData>
        # ... <autoFilter ref="A1:P2"/>: cut at the dimension's last cell, after the heading row, at the
        # autofilter's last row.
        pattern = re.compile(r'(.*<dimension ref="A1:)[A-Z]+[0-9]+("/>.*<sheetData>.*?</row>)'
                             r'<row r="2"[^>]*><c r="A2" s="([0-9]+)"><v>[^<]*</v></c></row>'
                             r'(</sheetData>.*<autoFilter ref="A1:[A-Z]+)2("/>.*)', re.DOTALL)
        book = re.compile(r'(.*<definedName name="_xlnm\._FilterDatabase"[^>]*>[^<]*\$)2(</definedName>.*)',
                          re.DOTALL)
        found, named = pattern.fullmatch(sheet), book.fullmatch(texts[varying[1]])
        core = tuple(texts[varying[2]].split(_PLACEHOLDER.strftime(_STAMP)))
        if found is None or named is None or len(core) != 3:
            raise RuntimeError("XlsxWriter's template workbook is not as expected: update spreadsheet.py")
        self.sheet = (found.group(1), found.group(2), found.group(4), found.group(5))
        start, self.head_text = found.group(1).encode(), found.group(2).encode()
        self.sheet_start, self.sheet_head = (_flushed(start), _flushed(self.head_text))
        self.start_crc, self.head_size = zlib.crc32(start), len(start) + len(self.head_text)
        self.day_style = found.group(3)
        # Most cells repeat a label, a name, a depot, a count, a date: a look-up is cheaper than writing them
        # (short text only: memory stays small). `typed`: 1 and True, a date and a datetime, kept apart.
        self.cell = functools.lru_cache(maxsize=16384, typed=True)(functools.partial(_cell, self))
        self.book = named.groups()
        self.core = core


def _flushed(text: bytes) -> bytes:
    """`text` deflated as a piece of a longer stream: not final, ending with a full flush."""
    compressor = zlib.compressobj(_SHEET_LEVEL, zlib.DEFLATED, -15)
    return compressor.compress(text) + compressor.flush(zlib.Z_FULL_FLUSH)


@functools.cache
def _template() -> _Template:
    """XlsxWriter's workbook with the same calls as every file had before, the headings and one date in A2
    (so the date format is in styles.xml), built once per process."""
    out = io.BytesIO()
    book = xlsxwriter.Workbook(out, {"in_memory": True})
    book.set_properties({"created": _PLACEHOLDER, "title": TITLE, "author": AUTHOR})
    heading = book.add_format({"bold": True, "text_wrap": True, "valign": "top", "bg_color": "#E8EDF3",
                               "border": 1})
    day = book.add_format({"num_format": "dd/mm/yyyy"})
    sheet = book.add_worksheet(SHEET)
    for column, (title, width) in enumerate(COLUMNS):
        sheet.set_column(column, column, width)
        sheet.write_string(0, column, title, heading)
    sheet.set_row(0, 45)
    sheet.write_datetime(1, 0, _PLACEHOLDER.date(), day)
    sheet.freeze_panes(1, 1)
    sheet.autofilter(0, 0, 1, len(COLUMNS) - 1)
    book.close()
    return _Template(out.getvalue())
