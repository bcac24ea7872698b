"""`vialflow explain`: one line's decision read back from the stored run, as an object and in French."""

from __future__ import annotations

from sqlalchemy import Engine

from pipeline.adapters.db import queries
from pipeline.domain.explain import explanation, sentences
from pipeline.domain.rules import NAMED_KINDS

from . import ServiceError

BENEFICIARY = ("effector", "vaccine", "injection")  # with the RPPS of a named line, else the officine


def explain(engine: Engine, order_id: str, session_id: str | None = None, version: int | None = None) -> dict:
    """The explanation of `order_id` in the run `version` (default the latest) of its session, with
    its French sentences under `phrases`. Raises ServiceError for an unknown order or run."""
    with engine.connect() as c:
        sessions = queries.order_sessions(c, order_id)
        if session_id is not None:
            sessions = [s for s in sessions if s == session_id]
        if not sessions:
            raise ServiceError(f"unknown order {order_id}" + (f" in session {session_id}" if session_id else ""))
        if len(sessions) > 1:
            raise ServiceError(f"order {order_id} is in sessions {', '.join(sessions)}: name one with --session")
        session_id = sessions[0]
        run = queries.run_id(c, session_id, version)
        if run is None:
            raise ServiceError(f"session {session_id} has no run{f' version {version}' if version else ''} yet")
        session = queries.session_rules(c, session_id)
        read = queries.lines(c, run, session_id, order_ids=[order_id], trace=True)
        line = read.lines.iloc[0].to_dict()
        named = line["effector"] in NAMED_KINDS
        same = queries.lines(c, run, session_id, **({"people": [line["rpps"]]} if named
                                                    else {"officines": [line["finess"]]})).lines
        mine = same[(same["rank"] < line["rank"]) & (same[list(BENEFICIARY)] == [line[k] for k in BENEFICIARY]).all(axis=1)
                    & ((same["rpps"] == line["rpps"]) if named else (same["finess"] == line["finess"]))]
        sold = queries.first_refused_for_supply(c, run, session_id, line["vaccine"])
        found = explanation(line, list(zip(read.deliveries["delivery_date"], read.deliveries["vials"])),
                            mine.sort_values("rank").to_dict("records"), queries.run_row(c, run).version, session, sold)
    return found | {"phrases": sentences(found, session)}
