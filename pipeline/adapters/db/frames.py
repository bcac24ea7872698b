"""Frames in and out of the database in bulk, past the ORM's per-row work.

PostgreSQL takes rows by one COPY block; SQLite by the driver's executemany, with dates written the way
SQLAlchemy writes them so that ORM reads of the same rows agree. Reads are executed by SQLAlchemy, every
value a bound parameter, and their rows taken from the driver's cursor as they are: dates are converted
column by column, not row by row. A whole session's rows come back from PostgreSQL by one COPY block
(`read_copy`): pandas parses it in C rather than building a million text cells from driver tuples.
"""

from __future__ import annotations

import io
import json

import pandas as pd
from sqlalchemy import (ARRAY, Column, Connection, Date, DateTime, Integer, Select, String, Table, any_, bindparam, func,
                        literal_column, select)
from sqlalchemy.sql.elements import ColumnElement, Label

_SQLITE_DATETIME = "%Y-%m-%d %H:%M:%S.%f"  # SQLAlchemy's storage format for SQLite
COPY_ROWS = 50_000  # rows of a frame turned into COPY's text at once


def insert_frame(connection: Connection, table: Table, frame: pd.DataFrame, **constants) -> int:
    """Insert every row of `frame` (its columns named as the table's) plus constant columns."""
    if not len(frame):
        return 0
    columns = frame.iloc[:0].assign(**constants).columns
    names = ", ".join(f'"{name}"' for name in columns)
    cursor = connection.connection.driver_connection.cursor()
    if connection.dialect.name == "postgresql":
        # One COPY in CSV: an unquoted empty field is NULL, except in NOT NULL columns, where it is the
        # empty string. Written COPY_ROWS rows at a time, so that neither the frame with its constants
        # nor its text is ever held whole beside the frame.
        required = ", ".join(f'"{name}"' for name in columns if not table.c[name].nullable)
        with cursor.copy(f'COPY "{table.name}" ({names}) FROM STDIN WITH (FORMAT csv, FORCE_NOT_NULL ({required}))') as copy:
            for start in range(0, len(frame), COPY_ROWS):
                copy.write(frame.iloc[start:start + COPY_ROWS].assign(**constants)
                           .to_csv(index=False, header=False, lineterminator="\n"))
        # Fresh statistics, or the planner takes a table it has never measured for a handful of rows and
        # nests loops over it: seconds for a 500-line session. ANALYZE samples, so it stays cheap.
        cursor.execute(f'ANALYZE "{table.name}"')
    else:
        rows = frame.assign(**constants)
        values = [_sqlite_column(rows[name], table.c[name].type) for name in rows.columns]
        marks = ", ".join("?" * len(rows.columns))
        cursor.executemany(f'INSERT INTO "{table.name}" ({names}) VALUES ({marks})', zip(*values))
    return len(frame)


def _sqlite_column(series: pd.Series, kind) -> list:
    if isinstance(kind, DateTime):
        instants = pd.to_datetime(series, utc=True)
        return instants.dt.tz_localize(None).dt.strftime(_SQLITE_DATETIME).where(instants.notna(), None).tolist()
    if isinstance(kind, Date):
        dates = pd.to_datetime(series)
        return dates.dt.strftime("%Y-%m-%d").where(dates.notna(), None).tolist()
    return series.astype(object).where(series.notna(), None).tolist()


def among(connection: Connection, column, values) -> ColumnElement[bool]:
    """`column IN values`, the whole list one bound parameter: an array on PostgreSQL, a JSON list on
    SQLite. A list of ids may hold 50 000 of them, past SQLite's 32 766 parameters per statement and
    far past what a statement's text should carry."""
    values = [value.item() if hasattr(value, "item") else value for value in values]  # numpy scalars
    if connection.dialect.name == "postgresql":
        return column == any_(bindparam(None, values, type_=ARRAY(column.type)))
    listed = func.json_each(bindparam(None, json.dumps(values), type_=String)).table_valued("value")
    return column.in_(select(listed.c.value))


def _rows(connection: Connection, query: Select) -> tuple[list[str], list[tuple]]:
    """The column names and the driver's rows of a select, its values bound by SQLAlchemy."""
    result = connection.execute(query)
    try:
        cursor = result.cursor  # the driver's own rows: no per-row conversion by SQLAlchemy
        return [column[0] for column in cursor.description], cursor.fetchall()
    finally:
        result.close()


def read_frame(connection: Connection, query: Select) -> pd.DataFrame:
    """Run a select and return its rows as a frame: DateTime columns as UTC instants, Date
    columns as `datetime.date` (None when empty)."""
    names, rows = _rows(connection, query)
    frame = pd.DataFrame.from_records(rows, columns=names, coerce_float=False)
    for column in query.selected_columns:
        if isinstance(column.type, DateTime):
            frame[column.name] = pd.to_datetime(frame[column.name], utc=True, format="ISO8601")
        elif isinstance(column.type, Date) and connection.dialect.name != "postgresql":  # psycopg gives dates
            dates = pd.to_datetime(frame[column.name], format="ISO8601")
            frame[column.name] = pd.Series([None if pd.isna(d) else d.date() for d in dates], index=frame.index,
                                           dtype=object)
    return frame


def read_copy(connection: Connection, query: Select) -> pd.DataFrame:
    """`read_frame`'s frame, the same to the value, read on PostgreSQL by one `COPY (select) TO STDOUT`
    in CSV (elsewhere, or for a select with other than text, integer, date or instant columns, or other
    values than text and integers, `read_frame` itself).

    COPY takes no parameters, and a value never goes into SQL text: each of the select's values is set
    for the session by `set_config` (a bound parameter) and read back by `current_setting`. In CSV, NULL
    and the empty string differ only by quotes, which a CSV reader drops: every text value is written
    after a one-character mark, so that an empty field is NULL and a mark alone the empty string (in a
    column that may hold NULL: elsewhere an empty field can only be the empty string)."""
    columns = list(query.selected_columns)
    if connection.dialect.name != "postgresql" or not all(
            isinstance(column.type, (String, Integer, DateTime, Date)) for column in columns):
        return read_frame(connection, query)
    texts = {column.name for column in columns if isinstance(column.type, String)}
    marks = {column.name for column in columns if column.name in texts and _nullable(column)}
    marked = query.with_only_columns(*[
        (literal_column("'.'", String) + (column.element if isinstance(column, Label) else column)).label(column.name)
        if column.name in marks else column for column in columns])
    compiled = marked.compile(dialect=connection.dialect)
    values = compiled.construct_params()
    if "POSTCOMPILE" in compiled.string or not all(type(value) in (str, int) for value in values.values()):
        return read_frame(connection, query)
    settings = {name: f"vialflow.copy_{number}" for number, name in enumerate(values)}
    cursor = connection.connection.driver_connection.cursor()
    for name, setting in settings.items():
        cursor.execute("SELECT set_config(%s, %s, false)", (setting, str(values[name])))
    statement = compiled.string % {
        name: f"CAST(current_setting('{setting}') AS {'text' if isinstance(values[name], str) else 'bigint'})"
        for name, setting in settings.items()}
    block = io.BytesIO()
    with cursor.copy(f"COPY ({statement}) TO STDOUT WITH (FORMAT csv)") as copy:
        for data in copy:
            block.write(data)
    if not block.tell():  # no row: the driver's empty frame, typed as it types it
        return read_frame(connection, query)
    block.seek(0)
    names = [column.name for column in columns]
    # An empty field is NULL but in a text column that cannot hold NULL, where it is the empty string.
    frame = pd.read_csv(block, header=None, names=names, dtype={name: str for name in texts}, keep_default_na=False,
                        na_values={name: [""] for name in names if name not in texts or name in marks},
                        encoding="utf-8")
    for column in columns:
        name = column.name
        if name in marks:
            frame[name] = frame[name].str.slice(1)
        elif isinstance(column.type, DateTime):
            frame[name] = pd.to_datetime(frame[name], utc=True, format="ISO8601")
        elif isinstance(column.type, Date):
            days = pd.to_datetime(frame[name], format="ISO8601")
            frame[name] = pd.Series([None if pd.isna(d) else d.date() for d in days], index=frame.index, dtype=object)
    return frame


def _nullable(column) -> bool:
    """Whether a selected column may hold NULL: a table's column says so, any other expression may."""
    column = column.element if isinstance(column, Label) else column
    return getattr(column, "nullable", True) if isinstance(column, Column) else True
