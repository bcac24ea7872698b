"""Read one session's scenario folder (CONTRACT.md): a broken file stops, a bad order row is rejected."""

from __future__ import annotations

import csv
import io
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import ValidationError

from pipeline.domain.rules import INJECTIONS, KINDS, PROFESSIONAL_KINDS, Session
from pipeline.domain.schedule import parse_weekdays

HEADERS = {
    "pharmacies.csv": ["finess", "name", "email", "department", "depot_id"],
    "professionals.csv": ["rpps", "kind", "name", "email", "finess"],
    "depots.csv": ["depot_id", "wholesaler", "name", "capacity_vials", "weekdays"],
    "depot_days.csv": ["depot_id", "date", "capacity_vials"],
    "orders.csv": ["order_id", "submitted_at", "finess", "effector", "rpps", "vaccine", "injection", "vials"],
}
REJECTION_COLUMNS = ["line", "order_id", "message"]
_REQUIRED = ["order_id", "submitted_at", "finess", "effector", "vaccine", "injection", "vials"]
_OFFSET = r"(?:Z|[+-]\d\d:?\d\d)$"
_DATE = r"^\d{4}-\d\d-\d\d$"
_PYDANTIC_LOC = re.compile(r"\[key\]|(?:literal|tuple|list|dict|str|int)\[.*\]")


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
    data = _toml(path)
    try:
        return Session.model_validate(data)
    except ValidationError as error:
        raise ScenarioError(f"{path.name}: {describe(error)}") from None


def _toml(path: Path) -> dict:
    try:
        text = _text(path)
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ScenarioError(f"{path.name}: not valid TOML ({error})") from None


def describe(error: ValidationError) -> str:
    """The first problem of a validation error as '<field>: <what is wrong>'."""
    first = error.errors()[0]
    # Union branches ("literal['national']") and dict-key markers ("[key]") are pydantic's, not the file's.
    field = ".".join(str(part) for part in first["loc"] if not _PYDANTIC_LOC.fullmatch(str(part))) or "(top level)"
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "missing":
        return f"field {field} is missing"
    # A whole table as input (a model-level check) would dump the file into the message.
    if "input" in first and first["type"] != "extra_forbidden" and not isinstance(first["input"], dict):
        return f"field {field}: {message} (got {first['input']!r})"
    return f"field {field}: {message}"


def _text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ScenarioError(f"{path.name}: missing file (expected at {path})") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise ScenarioError(f"{path.name}: line {line} is not UTF-8 (byte 0x{raw[error.start]:02x}); "
                            "save the file as UTF-8") from None


def _rows(path: Path) -> tuple[list[int], list[list[str]], list[str]]:
    """Line numbers, rows and header of a CSV file whose header starts with the contract's."""
    expected = HEADERS[path.name]
    reader = csv.reader(io.StringIO(_text(path), newline=""))
    header = next(reader, None)
    if not header or not any(cell.strip() for cell in header):
        raise ScenarioError(f"{path.name}: empty file (a header line is expected: {','.join(expected)})")
    header = [cell.strip() for cell in header]
    for position, column in enumerate(expected):
        if position >= len(header) or header[position] != column:
            found = header[position] if position < len(header) else "nothing"
            raise ScenarioError(f"{path.name}: column {position + 1} of the header must be "
                                f"'{column}', found '{found}' (header: {','.join(expected)})")
    numbers, rows = [], []
    line = reader.line_num
    for row in reader:
        if any(cell.strip() for cell in row):
            numbers.append(line + 1)
            rows.append(row)
        line = reader.line_num
    return numbers, rows, header


def _frame(path: Path) -> tuple[pd.DataFrame, list[int]]:
    """A register as strings; any malformed row stops the run (registers are reference data)."""
    numbers, rows, header = _rows(path)
    for line, row in zip(numbers, rows):
        if len(row) != len(header):
            raise ScenarioError(f"{path.name}: line {line} has {len(row)} fields, the header {len(header)}")
    frame = pd.DataFrame(rows, columns=header, dtype=object).apply(lambda c: c.str.strip()) if rows \
        else pd.DataFrame({c: pd.Series(dtype=object) for c in header})
    return frame, numbers


def _check(path: Path, frame: pd.DataFrame, numbers: list[int], column: str, ok: pd.Series, expected: str) -> None:
    bad = np.flatnonzero(~ok.to_numpy(bool))
    if len(bad):
        row = bad[0]
        raise ScenarioError(f"{path.name}: line {numbers[row]}, field {column}: "
                            f"{frame[column].iloc[row]!r} is not {expected}")


def _unique(path: Path, frame: pd.DataFrame, numbers: list[int], column: str) -> None:
    _check(path, frame, numbers, column, ~frame[column].duplicated(), "unique (already listed)")


def _depots(folder: Path) -> pd.DataFrame:
    path = folder / "depots.csv"
    frame, numbers = _frame(path)
    _check(path, frame, numbers, "depot_id", frame["depot_id"] != "", "a depot id")
    _unique(path, frame, numbers, "depot_id")
    _check(path, frame, numbers, "capacity_vials", frame["capacity_vials"].str.fullmatch(r"\d+"),
           "a whole number of vials")
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
    _check(path, frame, numbers, "finess", frame["finess"].str.fullmatch(r"\d{9}|2[AB]\d{7}"), "a FINESS number (9 digits)")
    _unique(path, frame, numbers, "finess")
    _check(path, frame, numbers, "department", frame["department"] != "", "a department code")
    _check(path, frame, numbers, "depot_id", frame["depot_id"].isin(depots["depot_id"]), "a depot of depots.csv")
    return frame


def _professionals(folder: Path) -> pd.DataFrame:
    path = folder / "professionals.csv"
    frame, numbers = _frame(path)
    _check(path, frame, numbers, "rpps", frame["rpps"].str.fullmatch(r"\d{11}"), "an RPPS number (11 digits)")
    _unique(path, frame, numbers, "rpps")
    _check(path, frame, numbers, "kind", frame["kind"].isin(PROFESSIONAL_KINDS), f"one of {', '.join(PROFESSIONAL_KINDS)}")
    return frame


def _depot_days(folder: Path, depots: pd.DataFrame) -> pd.DataFrame:
    path = folder / "depot_days.csv"
    if not path.exists():
        return pd.DataFrame({"depot_id": pd.Series(dtype=object), "date": pd.Series(dtype=object),
                             "capacity_vials": pd.Series(dtype=np.int64)})
    frame, numbers = _frame(path)
    _check(path, frame, numbers, "depot_id", frame["depot_id"].isin(depots["depot_id"]), "a depot of depots.csv")
    dates = pd.to_datetime(frame["date"].where(frame["date"].str.fullmatch(_DATE)), format="%Y-%m-%d", errors="coerce")
    _check(path, frame, numbers, "date", dates.notna(), "a date like 2021-06-22")
    _check(path, frame, numbers, "capacity_vials", frame["capacity_vials"].str.fullmatch(r"\d+"), "a whole number of vials")
    frame = frame.assign(date=dates.dt.date, capacity_vials=frame["capacity_vials"].astype(np.int64))
    _check(path, frame, numbers, "date", ~frame.duplicated(["depot_id", "date"]), "unique for its depot (already listed)")
    return frame


def _missing(flags) -> str:
    names = [column for column, empty in zip(_REQUIRED, flags) if empty]
    return f"missing field{'s' if len(names) > 1 else ''}: {', '.join(names)}"


def read_orders(path: Path, session: Session) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Readable order rows and the rejections of the others, each with its line number."""
    numbers, rows, header = _rows(path)
    width = len(HEADERS["orders.csv"])
    cells = [[cell.strip() for cell in (row + [""] * width)[:width]] for row in rows]
    frame = pd.DataFrame(cells, columns=HEADERS["orders.csv"], dtype=object)
    frame.insert(0, "line", np.asarray(numbers, np.int64))
    message = pd.Series("", index=frame.index, dtype=object)

    def reject(mask: pd.Series, explain) -> None:
        """The first problem of a row is its message; `explain` words it for the rows concerned."""
        fresh = (mask & (message == "")).to_numpy(bool)
        if fresh.any():
            rows = frame[fresh]
            message[fresh] = [explain(row) for row in rows.itertuples(index=False)]

    reject(pd.Series([len(row) > len(header) for row in rows], index=frame.index, dtype=bool),
           lambda row: f"more fields than the {len(header)} of the header")
    missing = frame[_REQUIRED].eq("")
    reject(missing.any(axis=1), lambda row: _missing([getattr(row, c) == "" for c in _REQUIRED]))
    submitted = frame["submitted_at"]
    instants = pd.to_datetime(submitted.where(submitted.str.contains(_OFFSET, regex=True)),
                              utc=True, format="ISO8601", errors="coerce")
    reject(instants.isna(),
           lambda row: f"bad date in submitted_at: '{row.submitted_at}' (ISO 8601 with offset expected)")
    vials = frame["vials"]
    whole = vials.str.fullmatch(r"\d{1,9}")
    reject(~whole | (vials.where(whole, "0").astype(np.int64) <= 0),
           lambda row: f"bad number in vials: '{row.vials}' (positive integer expected)")
    reject(~frame["effector"].isin(KINDS),
           lambda row: f"unknown effector '{row.effector}' (one of {', '.join(KINDS)})")
    reject(~frame["injection"].isin(INJECTIONS),
           lambda row: f"unknown injection '{row.injection}' (first or second expected)")
    reject(~frame["vaccine"].isin(list(session.vaccines)),
           lambda row: f"unknown vaccine key '{row.vaccine}' (this session has {', '.join(session.vaccines)})")
    first_line = dict(zip(frame["order_id"][::-1], frame["line"][::-1]))
    reject((frame["order_id"] != "") & frame["order_id"].duplicated(),
           lambda row: f"duplicate order_id {row.order_id} (first on line {first_line[row.order_id]})")

    good = message == ""
    orders = frame[good].assign(
        submitted_at=instants[good], vials=vials[good].astype(np.int64)).reset_index(drop=True)
    rejections = pd.DataFrame({"line": frame["line"][~good], "order_id": frame["order_id"][~good],
                               "message": message[~good]}).reset_index(drop=True)
    return orders, rejections
