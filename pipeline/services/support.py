"""Support views: an officine's lines, deliveries and emails per run (R12), and a session's runs (R11).

Read-only. Names and addresses appear in what these functions return, for support advisers,
and are never logged.
"""

from __future__ import annotations

from collections import defaultdict

import pandas as pd
from sqlalchemy import Connection, Engine

from pipeline.adapters.db import accounts, lines, outbox, runs, sessions
from pipeline.adapters.db.runs import STAMPS
from pipeline.domain.changes import RunChanges
from pipeline.domain.rules import NAMED_KINDS
from pipeline.domain.versions import differences

from .chain import last_done
from .refusals import OfficineNotFound, SearchTooShort, UnknownSession
from .runs import stored_run


def lookup(engine: Engine, finess: str, session_id: str | None = None) -> dict:
    """The officine `finess` in one session, or in every session it appears in (newest first by
    `closes_at`); per run, newest first: its lines in submission order, each line's deliveries,
    and the run's emails to the officine. Dates and instants as ISO strings."""
    finess = finess.strip()
    with engine.connect() as c:
        if session_id is not None and sessions.session_row(c, session_id) is None:
            raise UnknownSession(session_id)
        present = sessions.officine_sessions(c, finess, session_id)
        if present.empty:
            raise OfficineNotFound(finess, session_id)
        ids = present["id"].tolist()
        titles = sessions.session_titles(c, ids)
        rules = {session_id: sessions.session_rules(c, session_id) for session_id in ids}
        officines = {row["session_id"]: {k: _text(v) for k, v in row.items() if k != "session_id"}
                     for row in sessions.officine(c, finess, ids).to_dict("records")}
        versions = runs.session_runs(c, ids).sort_values(["session_id", "version"], ascending=[True, False])
        changes = runs.run_changes(c, ids)
        shown = {int(run.id): _lines(c, int(run.id), run.session_id, finess) for run in versions.itertuples()}
        emails = _emails(outbox.officine_emails(c, finess, ids))
        named = sorted({line["rpps"] for run_lines in shown.values() for line in run_lines
                        if line["rpps"] and line["effector"] in NAMED_KINDS})
        people = _emails(outbox.officine_emails(c, finess, ids, people=named))
    found = []
    for session in present.itertuples():
        mine = versions[versions["session_id"] == session.id]
        found.append({
            "session_id": session.id, "title": titles.get(session.id, ""),
            "closes_at": _iso(session.closes_at), "state": session.state, "timezone": rules[session.id].timezone,
            "vaccines": {key: vaccine.label for key, vaccine in rules[session.id].vaccines.items()},
            "officine": officines.get(session.id),
            "runs": [{"version": int(run.version), "created_at": _iso(run.created_at), "operator": run.operator,
                      "reason": run.reason, "step": last_done(run),
                      "lines": shown[int(run.id)], "emails": emails.get(int(run.id), []),
                      "professional_emails": people.get(int(run.id), []),
                      "redistributions": _redistributions(changes[int(run.id)], shown[int(run.id)])}
                     for run in mine.itertuples()]})
    return {"finess": finess, "sessions": found}


def _redistributions(changes: RunChanges, mine: list[dict]) -> list[dict]:
    """R10: the run's redistributions of this officine's lines (order_id, vials, to_rpps), as recorded."""
    ids = {line["order_id"] for line in mine}
    return [item.model_dump() for item in changes.redistribution if item.order_id in ids]


def _lines(c: Connection, run: int, session_id: str, finess: str) -> list[dict]:
    """The run's lines of the officine, in submission order, with their deliveries."""
    read = lines.read(c, run, session_id, officines=[finess])
    names = sessions.contacts(c, "professionals", session_id, sorted(set(read.lines["rpps"]) - {""}))
    days = defaultdict(list)
    # Dated days first, in date order; the pending remainder last (R8).
    for row in sorted(read.deliveries.itertuples(index=False),
                      key=lambda x: (x.order_id, x.delivery_date is None, str(x.delivery_date), x.depot_id)):
        days[row.order_id].append({"date": _iso(row.delivery_date), "vials": int(row.vials),
                                   "depot_id": row.depot_id, "status": row.status})
    return [{"order_id": row.order_id, "effector": row.effector, "rpps": row.rpps,
             "professional": _text(names[row.rpps]["name"]) if row.rpps in names else None,
             "vaccine": row.vaccine, "injection": row.injection, "requested": int(row.requested),
             "allocated": int(row.allocated), "status": row.status, "reason": row.reason, "rank": int(row.rank),
             "deliveries": days.get(row.order_id, [])}
            for row in read.lines.sort_values(["rank", "order_id"], kind="stable").itertuples(index=False)]


def _emails(frame: pd.DataFrame) -> dict[int, list[dict]]:
    found = defaultdict(list)
    for row in frame.itertuples(index=False):
        found[int(row.run_id)].append({
            "message_id": row.message_id, "state": row.state, "attempts": int(row.attempts),
            "sent_at": _iso(row.sent_at), "replaces": _text(row.replaces), "detail": _text(row.detail),
            "outbox_id": int(row.outbox_id), "recipient_id": row.recipient_id})
    return found


def list_runs(engine: Engine, session_id: str) -> list[dict]:
    """Every run version of the session, oldest first, with what it holds (`vialflow runs`)."""
    with engine.connect() as c:
        if sessions.session_row(c, session_id) is None:
            raise UnknownSession(session_id)
        versions = runs.session_runs(c, [session_id])
        changes = runs.run_changes(c, [session_id])
        decided, vials, emails = runs.run_counts(c, session_id)
    counted = {int(x.run_id): (int(x.lines), int(x.vials or 0)) for x in decided.itertuples()}
    delivered = {(int(x.run_id), x.status): int(x.vials) for x in vials.itertuples()}
    by_state = defaultdict(dict)
    for x in emails.sort_values("state").itertuples():
        by_state[int(x.run_id)][x.state] = int(x.n)
    found = []
    for run in versions.itertuples():
        key = int(run.id)
        n_lines, allocated = counted.get(key, (0, 0))
        found.append({
            "version": int(run.version), "created_at": _iso(run.created_at), "operator": run.operator,
            "reason": run.reason, "changes": changes[key].stored(), "input_hash": run.input_hash[:12],
            **{n: _iso(getattr(run, n)) for n in STAMPS}, "error": _text(run.error),
            "failed_step": _text(run.failed_step), "view_failure": _text(run.view_failure),
            "digest": _text(run.digest),
            "counts": {"lines": n_lines, "allocated_vials": allocated,
                       "scheduled_vials": delivered.get((key, "scheduled"), 0),
                       "pending_vials": delivered.get((key, "pending"), 0), "emails": by_state.get(key, {})}})
    return found


def _iso(value) -> str | None:
    """A date or instant as ISO 8601 (instants in UTC); None for a missing one."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return value if isinstance(value, str) else value.isoformat()


def _text(value) -> str | None:
    return None if value is None or (not isinstance(value, str) and pd.isna(value)) else str(value)


SEARCH_LIMIT, SEARCH_LEAST = 50, 3


def search(engine: Engine, text: str) -> list[dict]:
    """Officines whose name holds `text`, any case, in any session (one row per FINESS, its sessions listed)."""
    text = " ".join(text.split())
    if len(text) < SEARCH_LEAST:
        raise SearchTooShort(SEARCH_LEAST)
    with engine.connect() as c:
        rows = accounts.officines_named(c, text, SEARCH_LIMIT * 4)
    found: dict[str, dict] = {}
    for row in rows:
        entry = found.setdefault(row.finess, {"finess": row.finess, "name": row.name, "department": row.department,
                                              "sessions": []})
        entry["sessions"].append(row.session_id)
    return list(found.values())[:SEARCH_LIMIT]


def all_sessions(engine: Engine) -> list[dict]:
    """Every session, newest first: id, title, closes_at, state, and its runs' count."""
    with engine.connect() as c:
        frame = sessions.every_session(c)
        titles = sessions.session_titles(c, frame["id"].tolist())
        versions = runs.session_runs(c, frame["id"].tolist())
    counted = versions.groupby("session_id").size().to_dict() if len(versions) else {}
    return [{"session_id": row.id, "title": titles.get(row.id, ""), "closes_at": _iso(row.closes_at),
             "state": row.state, "runs": int(counted.get(row.id, 0))} for row in frame.itertuples()]


def compare_runs(engine: Engine, session_id: str, before: int, after: int) -> dict:
    """What changed from run version `before` to `after` of the session: lines, deliveries, vials."""
    with engine.connect() as c:
        ids = [stored_run(c, session_id, version) for version in (before, after)]
        old, new = (lines.read(c, run, session_id) for run in ids)
    return differences(old.lines, old.deliveries, new.lines, new.deliveries) | {"before": before, "after": after}


def vaccines(engine: Engine, session_id: str) -> list[dict]:
    """The session's vaccines: key, label, and the supply (None: unlimited), allocation policy and
    remainders its latest run allocated with."""
    with engine.connect() as c:
        rules = sessions.session_rules(c, session_id)
        latest = runs.latest_run(c, session_id)
    changed = latest.changes.supply if latest is not None else {}
    rules = latest.changes.applied_to(rules) if latest is not None else rules
    return [{"key": key, "label": vaccine.label, "supply": changed.get(key, vaccine.supply_vials),
             "allocation": vaccine.allocation, "remainders": vaccine.remainders}
            for key, vaccine in rules.vaccines.items()]
