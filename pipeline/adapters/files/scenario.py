"""Read one session's scenario folder (CONTRACT.md): a broken file stops, a bad order row is rejected.

What loads fits the database on every backend: each text field within its column of
adapters/db/tables.py and free of control characters, each integer by one rule (identifiers.WHOLE).

One module, over 300 lines: every file of the folder goes through the same record reader and the same
way of naming file, line and field, and the order lines are checked against the registers read here;
split, each part would reach into the others' private checks.
"""

from __future__ import annotations

import csv
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import ValidationError

from pipeline.domain.identifiers import (CONTROL, DEPARTMENT, DEPARTMENT_RULE, EMAIL_LIMIT, FINESS, FINESS_RULE,
                                         IDENTIFIER, IDENTIFIER_RULE, IDENTIFIER_RULE_FR, RPPS, RPPS_RULE, TEXT_LIMIT,
                                         WHOLE, shown)
from pipeline.domain.rules import INJECTIONS, KINDS, PROFESSIONAL_KINDS, Session
from pipeline.domain.calendar import parse_weekdays

# The whole file is in memory before csv sees it: the module's 131,072-character guard against
# runaway streams protects nothing here, and a longer field must be reported, not raised.
csv.field_size_limit(2**31 - 1)

HEADERS = {
    "pharmacies.csv": ["finess", "name", "email", "department", "depot_id"],
    "professionals.csv": ["rpps", "kind", "name", "email", "finess"],
    "depots.csv": ["depot_id", "wholesaler", "name", "capacity_vials", "weekdays"],
    "depot_days.csv": ["depot_id", "date", "capacity_vials"],
    "orders.csv": ["order_id", "submitted_at", "finess", "effector", "rpps", "vaccine", "injection", "vials"],
}
REJECTION_COLUMNS = ["line", "order_id", "message"]
_REQUIRED = ["order_id", "submitted_at", "finess", "effector", "vaccine", "injection", "vials"]
_OFFSET = r"(?:Z|[+-][0-9][0-9]:?[0-9][0-9])$"
_DATE = r"[0-9]{4}-[0-9][0-9]-[0-9][0-9]"
# Only spaces and tabs around a cell are the writer's slack; any other character is content.
_SPACES = " \t"
_QUOTING = "a quoted field does not close on its line, or its closing quote is not followed by a comma"
# A rejected order row's message is read by the officine's or the portal's people: in French.
_QUOTING_FR = ("un champ entre guillemets ne se ferme pas sur sa ligne, ou son guillemet fermant n'est pas suivi "
               "d'une virgule")
# A register cell's shape, by column, and the words for a cell that misses it.
_SHAPES = {
    "finess": (FINESS, FINESS_RULE), "rpps": (RPPS, RPPS_RULE),
    "depot_id": (IDENTIFIER, f"a depot id ({IDENTIFIER_RULE})"), "department": (DEPARTMENT, DEPARTMENT_RULE),
    "capacity_vials": (WHOLE, "a whole number of vials (ASCII digits, at most 9)"),
    "kind": ("|".join(PROFESSIONAL_KINDS), f"one of {', '.join(PROFESSIONAL_KINDS)}"),
    "date": (_DATE, "a date like 2021-06-22"),
}
# Free-text register columns and their longest value (weekdays: String(64) in tables.py).
_TEXTS = {"name": TEXT_LIMIT, "email": EMAIL_LIMIT, "wholesaler": TEXT_LIMIT, "weekdays": 64}
_PYDANTIC_LOC = re.compile(r"\[key\]|(?:literal|tuple|list|dict|str|int)\[.*\]|function-after\[.*\]")


class ScenarioError(Exception):
    """A scenario that cannot be run; the message is one sentence naming the file and field."""


@dataclass(frozen=True)
class Scenario:
    session: Session
    pharmacies: pd.DataFrame
    professionals: pd.DataFrame
    depots: pd.DataFrame
    depot_days: pd.DataFrame
    orders: pd.DataFrame      # readable rows with their `line`, `submitted_at` as UTC instants, `vials` as int
    rejections: pd.DataFrame  # line, order_id, message


def load_scenario(folder: Path) -> Scenario:
    folder = Path(folder)
    if not folder.is_dir():
        raise ScenarioError(f"{folder}: no such scenario folder")
    session = load_session(folder / "session.toml")
    depots = _depots(folder)
    pharmacies = _pharmacies(folder, depots)
    professionals = _professionals(folder)
    depot_days = _depot_days(folder, depots)
    orders, rejections = read_orders(folder / "orders.csv", session)
    return Scenario(session, pharmacies, professionals, depots, depot_days, orders, rejections)


def load_session(path: Path) -> Session:
    return read_toml(path, lambda data: Session.model_validate(data, context={"file": path.name}))


def read_toml(path: Path, validate):
    """`validate` applied to a TOML file; any problem is one ScenarioError line naming file, field and line."""
    text = read_text(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ScenarioError(f"{path.name}: not valid TOML ({error})") from None
    try:
        return validate(data)
    except ValidationError as error:
        raise ScenarioError(f"{path.name}: {describe(error, text)}") from None


def describe(error: ValidationError, text: str = "") -> str:
    """The first problem of a validation error as 'field <field> (line N): <what is wrong>'."""
    first = error.errors()[0]
    # Union branches ("literal['national']") and dict-key markers ("[key]") are pydantic's, not the file's.
    loc = [str(part) for part in first["loc"] if not _PYDANTIC_LOC.fullmatch(str(part))]
    field = ".".join(part if re.fullmatch(r"[\w-]{1,40}", part, re.ASCII) else shown(part) for part in loc) \
        or "(top level)"
    line = _toml_line(text, loc) if loc else None
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "missing":
        return f"field {field} is missing" + (f" (in the table at line {line})" if line else "")
    where = f"field {field}" + (f" (line {line})" if line else "")
    # A whole table as input (a model-level check) would dump the file into the message.
    if "input" in first and first["type"] != "extra_forbidden" and not isinstance(first["input"], dict) \
            and shown(first["input"]) not in message:
        return f"{where}: {message} (got {shown(first['input'])})"
    return f"{where}: {message}"


def _toml_line(text: str, loc: list[str]) -> int | None:
    """The line of the deepest table or key of `text` on the path `loc` (an item of an inline
    array or table is on its key's line; a missing key's table is where to add it)."""
    best, depth, table, arrays = None, 0, [], {}
    for number, line in enumerate(text.split("\n"), 1):
        header = re.match(r"\s*(\[\[?)\s*([^\]#]+?)\s*\]", line)
        assigned = re.match(r"\s*([\w\-.\"' ]+?)\s*=", line)
        if header:
            table = [key.strip().strip("\"'") for key in header.group(2).split(".")]
            if header.group(1) == "[[":  # an array of tables: its items are numbered in loc
                arrays[tuple(table)] = arrays.get(tuple(table), -1) + 1
                table = table + [str(arrays[tuple(table)])]
            path = table
        elif assigned:
            path = table + [key.strip().strip("\"'") for key in assigned.group(1).split(".")]
        else:
            continue
        if depth < len(path) <= len(loc) and loc[:len(path)] == path:
            best, depth = number, len(path)
    return best


def read_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ScenarioError(f"{path.name}: missing file (expected at {path})") from None
    except OSError as error:
        raise ScenarioError(f"{path.name}: cannot be read ({error.strerror})") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise ScenarioError(f"{path.name}: line {line} is not UTF-8 (byte 0x{raw[error.start]:02x}); "
                            "save the file as UTF-8") from None


def _records(text: str) -> list[tuple[list[str], bool]]:
    """Each physical line's cells, and whether its quoting is broken. A record never runs over a
    line end: no field of these files holds one, and an unclosed quote must cost its own row only,
    not swallow every later one."""
    lines = re.split(r"\r\n|\r|\n", text)
    reader = csv.reader(lines, strict=True)
    rows: list[list[str]] = []
    try:
        for row in reader:  # the common case in one pass: no quote runs over a line end
            if reader.line_num != len(rows) + 1:
                raise csv.Error("a record over several lines")
            rows.append(row)
        return [(row, False) for row in rows]
    except csv.Error:
        pass
    records = []
    for line in lines:
        try:
            records.append((next(csv.reader((line,), strict=True), []), False))
        except csv.Error:
            records.append((next(csv.reader((line,)), []), True))
    return records


def _rows(path: Path) -> tuple[list[int], list[list[str]], list[bool], list[str]]:
    """Line numbers, rows, broken quoting and header of a CSV file whose header starts with the contract's."""
    expected = HEADERS[path.name]
    records = _records(read_text(path))
    header = [cell.strip(_SPACES) for cell in records[0][0]]
    if not any(header):
        raise ScenarioError(f"{path.name}: empty file (a header line is expected: {','.join(expected)})")
    for position, column in enumerate(expected):
        if position >= len(header) or header[position] != column:
            found = shown(header[position]) if position < len(header) else "nothing"
            raise ScenarioError(f"{path.name}: column {position + 1} of the header must be "
                                f"'{column}', found {found} (header: {','.join(expected)})")
    kept = [(number, row, broken) for number, (row, broken) in enumerate(records[1:], 2)
            if any(cell.strip(_SPACES) for cell in row)]
    return [k[0] for k in kept], [k[1] for k in kept], [k[2] for k in kept], header


def _frame(path: Path) -> tuple[pd.DataFrame, list[int]]:
    """A register as strings; any malformed row stops the run (registers are reference data)."""
    numbers, rows, broken, header = _rows(path)
    for line, row, bad in zip(numbers, rows, broken):
        if bad:
            raise ScenarioError(f"{path.name}: line {line}: {_QUOTING}")
        if len(row) != len(header):
            raise ScenarioError(f"{path.name}: line {line} has {len(row)} fields, the header {len(header)}")
    frame = pd.DataFrame(rows, columns=header, dtype=object).apply(lambda c: c.str.strip(_SPACES)) if rows \
        else pd.DataFrame({c: pd.Series(dtype=object) for c in header})
    for column in HEADERS[path.name]:
        if column in _SHAPES:
            _check(path, frame, numbers, column, frame[column].str.fullmatch(_SHAPES[column][0]), _SHAPES[column][1])
        else:
            limit = _TEXTS[column]
            ok = frame[column].str.len().le(limit) & ~frame[column].str.contains(CONTROL)
            _check(path, frame, numbers, column, ok, f"text of at most {limit} characters without control characters")
    return frame, numbers


def _check(path: Path, frame: pd.DataFrame, numbers: list[int], column: str, ok: pd.Series, expected: str) -> None:
    bad = np.flatnonzero(~ok.to_numpy(bool))
    if len(bad):
        row = bad[0]
        raise ScenarioError(f"{path.name}: line {numbers[row]}, field {column}: "
                            f"{shown(frame[column].iloc[row])} is not {expected}")


def _unique(path: Path, frame: pd.DataFrame, numbers: list[int], column: str) -> None:
    _check(path, frame, numbers, column, ~frame[column].duplicated(), "unique (already listed)")


def _depots(folder: Path) -> pd.DataFrame:
    path = folder / "depots.csv"
    frame, numbers = _frame(path)
    _unique(path, frame, numbers, "depot_id")
    _check(path, frame, numbers, "weekdays", frame["weekdays"].map(_weekdays_ok), "weekdays like Mon-Fri or Mon,Wed,Fri")
    return frame.assign(capacity_vials=frame["capacity_vials"].astype(np.int64))


def _weekdays_ok(text: str) -> bool:
    try:
        return bool(parse_weekdays(text))
    except ValueError:
        return False


def _pharmacies(folder: Path, depots: pd.DataFrame) -> pd.DataFrame:
    path = folder / "pharmacies.csv"
    frame, numbers = _frame(path)
    _unique(path, frame, numbers, "finess")
    _check(path, frame, numbers, "depot_id", frame["depot_id"].isin(depots["depot_id"]), "a depot of depots.csv")
    return frame


def _professionals(folder: Path) -> pd.DataFrame:
    path = folder / "professionals.csv"
    frame, numbers = _frame(path)
    _unique(path, frame, numbers, "rpps")
    return frame


def _depot_days(folder: Path, depots: pd.DataFrame) -> pd.DataFrame:
    path = folder / "depot_days.csv"
    if not path.exists():
        return pd.DataFrame({"depot_id": pd.Series(dtype=object), "date": pd.Series(dtype=object),
                             "capacity_vials": pd.Series(dtype=np.int64)})
    frame, numbers = _frame(path)
    _check(path, frame, numbers, "depot_id", frame["depot_id"].isin(depots["depot_id"]), "a depot of depots.csv")
    dates = pd.to_datetime(frame["date"], format="%Y-%m-%d", errors="coerce")
    _check(path, frame, numbers, "date", dates.notna(), "a date like 2021-06-22")
    frame = frame.assign(date=dates.dt.date, capacity_vials=frame["capacity_vials"].astype(np.int64))
    _check(path, frame, numbers, "date", ~frame.duplicated(["depot_id", "date"]), "unique for its depot (already listed)")
    return frame


def _missing(flags) -> str:
    names = [column for column, empty in zip(_REQUIRED, flags) if empty]
    return f"{'champs manquants' if len(names) > 1 else 'champ manquant'} : {', '.join(names)}"


def _cited(value: object) -> str:
    return shown(value, characters="caractères")


def _shaped(cells: pd.Series, pattern: str) -> pd.Series:
    return cells.str.fullmatch(pattern).astype(bool)


def read_orders(path: Path, session: Session) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Readable order rows and the rejections of the others, each with its line number."""
    numbers, rows, broken, header = _rows(path)
    width = len(HEADERS["orders.csv"])
    cells = [[cell.strip(_SPACES) for cell in (row + [""] * width)[:width]] for row in rows]
    frame = pd.DataFrame(cells, columns=HEADERS["orders.csv"], dtype=object)
    frame.insert(0, "line", np.asarray(numbers, np.int64))
    message = pd.Series("", index=frame.index, dtype=object)

    def reject(mask, explain) -> None:
        """The first problem of a row is its message; `explain` words it for the rows concerned."""
        fresh = (np.asarray(mask, bool) & (message == "").to_numpy(bool))
        if fresh.any():
            message[fresh] = [explain(row) for row in frame[fresh].itertuples(index=False)]

    reject(broken, lambda row: _QUOTING_FR)
    reject([len(row) > len(header) for row in rows], lambda row: f"plus de champs que les {len(header)} de l'en-tête")
    missing = frame[_REQUIRED].eq("")
    reject(missing.any(axis=1), lambda row: _missing([getattr(row, c) == "" for c in _REQUIRED]))
    reject(~_shaped(frame["order_id"], IDENTIFIER),
           lambda row: f"order_id invalide : {_cited(row.order_id)} ({IDENTIFIER_RULE_FR})")
    submitted = frame["submitted_at"]
    instants = pd.to_datetime(submitted.where(_shaped(submitted, _DATE + r"T.*" + _OFFSET)),
                              utc=True, format="ISO8601", errors="coerce")
    reject(instants.isna(), lambda row: f"date invalide dans submitted_at : {_cited(row.submitted_at)} "
                                        "(ISO 8601 avec le décalage horaire attendu, comme 2021-06-14T09:12:03+02:00)")
    reject(~_shaped(frame["finess"], FINESS),
           lambda row: f"finess invalide : {_cited(row.finess)} (9 chiffres attendus, A ou B permis en 2e position)")
    reject(~_shaped(frame["rpps"], f"|{RPPS}"),
           lambda row: f"rpps invalide : {_cited(row.rpps)} (11 chiffres attendus, ou vide)")
    vials = frame["vials"]
    whole = _shaped(vials, WHOLE)
    reject(~whole | (vials.where(whole, "0").astype(np.int64) <= 0),
           lambda row: f"nombre invalide dans vials : {_cited(row.vials)} (entier positif attendu)")
    reject(~frame["effector"].isin(KINDS),
           lambda row: f"effector inconnu : {_cited(row.effector)} (l'un de {', '.join(KINDS)})")
    reject(~frame["injection"].isin(INJECTIONS),
           lambda row: f"injection inconnue : {_cited(row.injection)} (first ou second attendu)")
    reject(~frame["vaccine"].isin(list(session.vaccines)),
           lambda row: f"vaccin inconnu : {_cited(row.vaccine)} "
                       f"(vaccins de la session : {', '.join(session.vaccines)})")
    first_line = dict(zip(frame["order_id"][::-1], frame["line"][::-1]))
    reject((frame["order_id"] != "") & frame["order_id"].duplicated(),
           lambda row: f"order_id en double : {row.order_id} (déjà en ligne {first_line[row.order_id]})")

    good = message == ""
    orders = frame[good].assign(
        submitted_at=instants[good], vials=vials[good].astype(np.int64)).reset_index(drop=True)
    # A rejected order_id is kept as written, less what no database column can hold.
    kept_id = frame["order_id"][~good].str.replace(CONTROL, "\ufffd", regex=True).str.slice(0, 64)
    rejections = pd.DataFrame(dict(zip(REJECTION_COLUMNS, (frame["line"][~good], kept_id, message[~good]))),
                              columns=REJECTION_COLUMNS).reset_index(drop=True)
    return orders, rejections
