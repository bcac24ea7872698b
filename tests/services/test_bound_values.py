"""Every value a query reads with is a bound parameter, never SQL text: a NUL byte or tens of thousands of
characters of search are values like any other, and a list of 60,000 ids is one parameter, past SQLite's
limit of 32,766 parameters a statement."""

from __future__ import annotations

import pytest
from sqlalchemy import event

from pipeline.adapters.db import lines, runs, sessions
from pipeline.services import support
from pipeline.services.refusals import OfficineNotFound


@pytest.fixture
def statements(db) -> list[tuple[str, object]]:
    """Each statement the database is sent, with its parameters."""
    seen = []
    event.listen(db, "before_cursor_execute", lambda conn, cursor, text, parameters, context, many:
                 seen.append((text, parameters)))
    return seen


def test_a_nul_byte_and_40000_characters_of_search_are_bound_values_not_sql_text(db, prepared, statements):
    # (SQLite refuses a LIKE pattern over 50,000 characters: bounding a search's length is the console's input
    # checking's, before any query.)
    for text in ("Pharmacie\x00 de la Gare", "Gare" * 10_000):
        assert support.search(db, text) == []
        sql, parameters = statements[-1]
        assert text not in sql and len(sql) < 2_000 and any(text in str(value) for value in parameters)


def test_a_nul_byte_in_an_id_read_through_a_frame_is_bound(db, prepared, statements):
    with pytest.raises(OfficineNotFound):
        support.lookup(db, "6900\x0012345")
    assert all("\x00" not in sql for sql, _ in statements)


def test_a_list_of_60000_ids_is_one_parameter_and_finds_what_it_names(db, prepared, statements):
    with db.connect() as c:
        session_id = runs.run_row(c, prepared).session_id
        every = lines.read(c, prepared, session_id).lines["order_id"].tolist()
        asked = [f"A-NONE-{n}" for n in range(60_000)] + every[:3]
        statements.clear()
        found = lines.read(c, prepared, session_id, order_ids=asked)
        known = sessions.known_orders(c, session_id, asked)
    assert sorted(found.lines["order_id"]) == sorted(every[:3]) and known == set(every[:3])
    assert all(len(sql) < 5_000 for sql, _ in statements)
