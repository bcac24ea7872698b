"""Frames in and out of the database in bulk: COPY on PostgreSQL, executemany elsewhere."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import Connection, Select, Table, insert


def insert_frame(connection: Connection, table: Table, frame: pd.DataFrame, **constants) -> int:
    """Insert every row of `frame` (its columns named as the table's) plus constant columns."""
    columns = list(frame.columns) + list(constants)
    values = [frame[c].astype(object).where(frame[c].notna(), None).tolist() for c in frame.columns]
    values += [[v] * len(frame) for v in constants.values()]
    rows = list(zip(*values))
    if not rows:
        return 0
    if connection.dialect.name == "postgresql":
        cursor = connection.connection.driver_connection.cursor()
        names = ", ".join(f'"{c}"' for c in columns)
        with cursor.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy:
            for row in rows:
                copy.write_row(row)
    else:
        connection.execute(insert(table), [dict(zip(columns, row)) for row in rows])
    return len(rows)


def read_frame(connection: Connection, query: Select) -> pd.DataFrame:
    result = connection.execute(query)
    return pd.DataFrame(result.fetchall(), columns=list(result.keys()))
