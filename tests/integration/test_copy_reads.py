"""A select read by COPY on PostgreSQL gives the frame the driver's tuples give, to the value: NULL apart
from the empty string, and text that CSV must quote, escape or keep as it is."""

from __future__ import annotations

import datetime as dt

import pandas as pd
from sqlalchemy import Column, Date, DateTime, Integer, MetaData, String, Table, create_engine, select

from pipeline.adapters.db.frames import read_copy, read_frame

AWKWARD = ["", None, " ", '"', '""', "a,b", "line\nbreak", "cr\r\nlf", "tab\there", "\\N", "\\", "NULL", "null",
           "NaN", "N/A", "#N/A", "1.0", "007", "É, à, ç", "—", "0"]


def test_text_read_by_copy_keeps_null_apart_from_the_empty_string_and_every_character(database_url):
    engine = create_engine(database_url)
    table = Table("awkward", MetaData(), Column("id", Integer, primary_key=True), Column("label", String(40)),
                  Column("code", String(16), nullable=False), Column("day", Date), Column("at", DateTime(timezone=True)),
                  Column("count", Integer, nullable=False))
    table.create(engine)
    rows = [{"id": n, "label": text, "code": text if text is not None else "", "count": n * 7,
             "day": dt.date(2021, 6, 14) + dt.timedelta(days=n) if n % 3 else None,
             "at": dt.datetime(2021, 6, 14, 9, n, tzinfo=dt.timezone.utc)} for n, text in enumerate(AWKWARD)]
    with engine.begin() as c:
        c.execute(table.insert(), rows)
    query = select(table.c.id, table.c.label, table.c.code.label("renamed"), table.c.day, table.c.at, table.c.count) \
        .where(table.c.code != "never", table.c.count >= 0).order_by(table.c.id)
    with engine.connect() as c:
        copied, driven = read_copy(c, query), read_frame(c, query)
        none = query.where(table.c.count < 0)
        pd.testing.assert_frame_equal(read_copy(c, none), read_frame(c, none))
    pd.testing.assert_frame_equal(copied, driven)
    assert copied["label"].iloc[0] == "" and pd.isna(copied["label"].iloc[1])
    assert copied["renamed"].tolist() == [text if text is not None else "" for text in AWKWARD]
    engine.dispose()


def test_a_select_that_binds_a_value_copy_cannot_carry_is_read_by_the_driver(database_url):
    engine = create_engine(database_url)
    table = Table("instants", MetaData(), Column("id", Integer, primary_key=True), Column("at", DateTime(timezone=True)))
    table.create(engine)
    with engine.begin() as c:
        c.execute(table.insert(), [{"id": 1, "at": dt.datetime(2021, 6, 14, tzinfo=dt.timezone.utc)}])
    query = select(table.c.id).where(table.c.at <= dt.datetime(2021, 6, 15, tzinfo=dt.timezone.utc))
    with engine.connect() as c:
        pd.testing.assert_frame_equal(read_copy(c, query), read_frame(c, query))
    engine.dispose()
