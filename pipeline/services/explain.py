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
        found = _explained(c, run, session_id, session, runs.run_row(c, run).version, line, read.deliveries, same, {})
    return found | {"phrases": sentences(found, session)}


def explain_lines(engine: Engine, session_id: str, version: int, order_ids: list[str]) -> dict[str, dict]:
    """The explanations of several lines of one run version at once (an officine's page): the session's
    rules, the lines and their neighbours read once. Each as `explain` gives it, by order id."""
    if not order_ids:
        return {}
    with engine.connect() as c:
        run = runs.run_id(c, session_id, version)
        if run is None:
            raise NoRun(session_id, version)
        session = sessions.session_rules(c, session_id)
        read = lines.read(c, run, session_id, order_ids=order_ids, trace=True)
        named = read.lines["effector"].isin(NAMED_KINDS)
        same = lines.read(c, run, session_id, officines=sorted(set(read.lines.loc[~named, "finess"])),
                          people=sorted(set(read.lines.loc[named, "rpps"]))).lines
        sold: dict = {}
        found = {}
        for line in read.lines.to_dict("records"):
            mine = read.deliveries[read.deliveries["order_id"] == line["order_id"]]
            said = _explained(c, run, session_id, session, version, line, mine, same, sold)
            found[line["order_id"]] = said | {"phrases": sentences(said, session)}
    return found


def _explained(c, run: int, session_id: str, session, version: int, line: dict, deliveries, same, sold: dict) -> dict:
    """One line's explanation from its deliveries and the lines `same` that may share its beneficiary's cap;
    `sold` keeps each vaccine's first line refused for supply."""
    named = line["effector"] in NAMED_KINDS
    mine = same[(same["rank"] < line["rank"]) & (same[list(BENEFICIARY)] == [line[k] for k in BENEFICIARY]).all(axis=1)
                & ((same["rpps"] == line["rpps"]) if named else (same["finess"] == line["finess"]))]
    if line["vaccine"] not in sold:
        sold[line["vaccine"]] = lines.first_refused_for_supply(c, run, session_id, line["vaccine"])
    return explanation(line, list(zip(deliveries["delivery_date"], deliveries["vials"])),
                       mine.sort_values("rank").to_dict("records"), version, session, sold[line["vaccine"]])
