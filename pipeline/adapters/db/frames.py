"""Frames in and out of the database in bulk, past the ORM's per-row work.

PostgreSQL takes rows by one COPY block; SQLite by the driver's executemany, with dates written the way
SQLAlchemy writes them so that ORM reads of the same rows agree. Reads go straight to the
driver cursor and convert dates column by column.
"""

from __future__ import annotations

import pandas as pd
from sqlalchemy import Connection, Date, DateTime, Select, Table

_SQLITE_DATETIME = "%Y-%m-%d %H:%M:%S.%f"  # SQLAlchemy's storage format for SQLite


def insert_frame(connection: Connection, table: Table, frame: pd.DataFrame, **constants) -> int:
    """Insert every row of `frame` (its columns named as the table's) plus constant columns."""
    if not len(frame):
        return 0
    rows = frame.assign(**constants)
    names = ", ".join(f'"{name}"' for name in rows.columns)
    cursor = connection.connection.driver_connection.cursor()
    if connection.dialect.name == "postgresql":
        # One CSV block: an unquoted empty field is NULL, except in NOT NULL columns, where it
        # is the empty string.
        required = ", ".join(f'"{name}"' for name in rows.columns if not table.c[name].nullable)
        block = rows.to_csv(index=False, header=False, lineterminator="\n")
        with cursor.copy(f'COPY "{table.name}" ({names}) FROM STDIN WITH (FORMAT csv, FORCE_NOT_NULL ({required}))') as copy:
            copy.write(block)
        # Fresh statistics, or the planner takes a table it has never measured for a handful of rows and
        # nests loops over it: seconds for a 500-line session. ANALYZE samples, so it stays cheap.
        cursor.execute(f'ANALYZE "{table.name}"')
    else:
        values = [_sqlite_column(rows[name], table.c[name].type) for name in rows.columns]
        marks = ", ".join("?" * len(rows.columns))
        cursor.executemany(f'INSERT INTO "{table.name}" ({names}) VALUES ({marks})', zip(*values))
    return len(rows)


def _sqlite_column(series: pd.Series, kind) -> list:
    if isinstance(kind, DateTime):
        instants = pd.to_datetime(series, utc=True)
        return instants.dt.tz_localize(None).dt.strftime(_SQLITE_DATETIME).where(instants.notna(), None).tolist()
    if isinstance(kind, Date):
        dates = pd.to_datetime(series)
        return dates.dt.strftime("%Y-%m-%d").where(dates.notna(), None).tolist()
    return series.astype(object).where(series.notna(), None).tolist()


def read_rows(connection: Connection, query: Select) -> list[dict]:
    """Run a select and return its rows as plain dicts of driver values (no date conversion)."""
    cursor = _execute(connection, query)
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def _execute(connection: Connection, query: Select):
    sql = str(query.compile(dialect=connection.dialect, compile_kwargs={"literal_binds": True}))
    cursor = connection.connection.driver_connection.cursor()
    cursor.execute(sql)
    return cursor


def read_frame(connection: Connection, query: Select) -> pd.DataFrame:
    """Run a select and return its rows as a frame: DateTime columns as UTC instants, Date
    columns as `datetime.date` (None when empty)."""
    cursor = _execute(connection, query)
    names = [column[0] for column in cursor.description]
    frame = pd.DataFrame.from_records(cursor.fetchall(), columns=names, coerce_float=False)
    for column in query.selected_columns:
        if isinstance(column.type, DateTime):
            frame[column.name] = pd.to_datetime(frame[column.name], utc=True, format="ISO8601")
        elif isinstance(column.type, Date) and connection.dialect.name != "postgresql":  # psycopg gives dates
            dates = pd.to_datetime(frame[column.name], format="ISO8601")
            frame[column.name] = pd.Series([None if pd.isna(d) else d.date() for d in dates], index=frame.index,
                                           dtype=object)
    return frame
