"""Shared by the purge tests (SQLite and PostgreSQL): every stored value searched for personal data."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import MetaData, String, Text, create_engine, select

from .test_logs import personal_data


def names_and_addresses(scenario: Path) -> list[str]:
    """The registers' names and email addresses (RPPS are ids, and stay)."""
    return [value for value in personal_data(scenario) if not value.isdigit()]


def personal_values_stored(url: str, scenario: Path) -> list[tuple[str, str, str]]:
    """(table, column, value) for every text column of every table holding a register's name or address."""
    wanted = names_and_addresses(scenario)
    engine = create_engine(url)
    metadata = MetaData()
    metadata.reflect(engine)
    found = []
    with engine.connect() as c:
        for table in metadata.sorted_tables:
            for column in table.columns:
                if not isinstance(column.type, (String, Text)) and "JSON" not in type(column.type).__name__.upper():
                    continue
                for (value,) in c.execute(select(column).where(column.is_not(None))):
                    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
                    found += [(table.name, column.name, w) for w in wanted if w in text]
    engine.dispose()
    return found


def volumes_and_dates(lookup: dict) -> list:
    """An officine's look-up without the names and addresses: its runs' lines, deliveries and emails."""
    return json.loads(json.dumps(lookup["sessions"] if "sessions" in lookup else lookup, default=str),
                      object_hook=lambda d: {k: v for k, v in d.items() if k not in ("name", "email", "professional")})
