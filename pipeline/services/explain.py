"""`vialflow explain`: one line's decision read back from the stored run, as an object and in French."""

from __future__ import annotations

from sqlalchemy import Engine

from pipeline.adapters.db import lines, runs, sessions
from pipeline.domain.explain import explanation, sentences
from pipeline.domain.rules import NAMED_KINDS

from .refusals import NoRun, OrderInSeveralSessions, UnknownOrder

BENEFICIARY = ("effector", "vaccine", "injection")  # with the RPPS of a named line, else the officine


def explain(engine: Engine, order_id: str, session_id: str | None = None, version: int | None = None) -> dict:
    """The explanation of `order_id` in the run `version` (default the latest) of its session, with
    its French sentences under `phrases`. Refused for an unknown order or run."""
    with engine.connect() as c:
        found_in = lines.order_sessions(c, order_id)
        if session_id is not None:
            found_in = [s for s in found_in if s == session_id]
        if not found_in:
            raise UnknownOrder(order_id, session_id)
        if len(found_in) > 1:
            raise OrderInSeveralSessions(order_id, tuple(found_in))
        session_id = found_in[0]
        run = runs.run_id(c, session_id, version)
        if run is None:
            raise NoRun(session_id, version)
        session = sessions.session_rules(c, session_id)
        read = lines.read(c, run, session_id, order_ids=[order_id], trace=True)
        line = read.lines.iloc[0].to_dict()
        named = line["effector"] in NAMED_KINDS
        same = lines.read(c, run, session_id, **({"people": [line["rpps"]]} if named
                                                 else {"officines": [line["finess"]]})).lines
        mine = same[(same["rank"] < line["rank"]) & (same[list(BENEFICIARY)] == [line[k] for k in BENEFICIARY]).all(axis=1)
                    & ((same["rpps"] == line["rpps"]) if named else (same["finess"] == line["finess"]))]
        sold = lines.first_refused_for_supply(c, run, session_id, line["vaccine"])
        found = explanation(line, list(zip(read.deliveries["delivery_date"], read.deliveries["vials"])),
                            mine.sort_values("rank").to_dict("records"), runs.run_row(c, run).version, session, sold)
    return found | {"phrases": sentences(found, session)}
