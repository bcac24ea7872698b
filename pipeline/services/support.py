"""Support views: an officine's lines, deliveries and emails per run (R12), and a session's runs (R11).

Read-only. Names and addresses appear in what these functions return, for support advisers,
and are never logged.
"""

from __future__ import annotations

import json
from collections import defaultdict

import pandas as pd
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from sqlalchemy import Connection, Engine, and_, func, select, union

from pipeline.adapters.db.frames import read_frame
from pipeline.adapters.db.tables import Base

T = Base.metadata.tables
PENDING = "en attente"  # a remainder without a date yet (R8)
STAMPS = ("allocated_at", "scheduled_at", "prepared_at", "sending_at")


def lookup(engine: Engine, finess: str, session_id: str | None = None) -> dict:
    """The officine `finess` in one session, or in every session it appears in (newest first by
    `closes_at`); per run, newest first: its lines in submission order, each line's deliveries,
    and the run's emails to the officine. Dates and instants as ISO strings."""
    finess = finess.strip()
    s, p, o, r = T["sessions"], T["pharmacies"], T["orders"], T["runs"]
    with engine.connect() as c:
        if session_id is not None and c.execute(select(s.c.id).where(s.c.id == session_id)).first() is None:
            raise LookupError(f"unknown session {session_id}")
        # In the session's register, or only on its orders (refused as `unknown_pharmacy`).
        present = union(select(p.c.session_id).where(p.c.finess == finess),
                        select(o.c.session_id).where(o.c.finess == finess))
        query = select(s.c.id, s.c.closes_at, s.c.state).where(s.c.id.in_(present))
        if session_id is not None:
            query = query.where(s.c.id == session_id)
        sessions = read_frame(c, query.order_by(s.c.closes_at.desc(), s.c.id))
        if sessions.empty:
            where = f"session {session_id}" if session_id is not None else "any session"
            raise LookupError(f"no officine {finess} in {where}")
        ids = sessions["id"].tolist()
        rules = dict(c.execute(select(s.c.id, s.c.rules).where(s.c.id.in_(ids))).all())
        officines = _officines(c, finess, ids)
        runs = read_frame(c, select(r.c.id, r.c.session_id, r.c.version, r.c.created_at, r.c.operator, r.c.reason,
                                    *[r.c[n] for n in STAMPS]).where(r.c.session_id.in_(ids))
                          .order_by(r.c.session_id, r.c.version.desc()))
        changes = dict(c.execute(select(r.c.id, r.c.changes).where(r.c.session_id.in_(ids))).all())
        lines, emails = _lines(c, finess, ids), _emails(c, finess, ids)
    found = []
    for session in sessions.itertuples():
        mine = runs[runs["session_id"] == session.id]
        found.append({
            "session_id": session.id, "title": (rules.get(session.id) or {}).get("title", ""),
            "closes_at": _iso(session.closes_at), "state": session.state,
            "officine": officines.get(session.id),
            "runs": [{"version": int(run.version), "created_at": _iso(run.created_at), "operator": run.operator,
                      "reason": run.reason, "step": _step(run),
                      "lines": lines.get(int(run.id), []), "emails": emails.get(int(run.id), []),
                      "redistributions": _redistributions(changes.get(int(run.id)), lines.get(int(run.id), []))}
                     for run in mine.itertuples()]})
    return {"finess": finess, "sessions": found}


def _redistributions(changes: dict | None, lines: list[dict]) -> list[dict]:
    """R10: the run's redistributions of this officine's lines (order_id, vials, to_rpps), as recorded."""
    mine = {line["order_id"] for line in lines}
    return [item for item in (changes or {}).get("redistribution", []) if item.get("order_id") in mine]


def _officines(c: Connection, finess: str, ids: list[str]) -> dict[str, dict]:
    p, dp = T["pharmacies"], T["depots"]
    frame = read_frame(c, select(p.c.session_id, p.c.finess, p.c.name, p.c.email, p.c.department, p.c.depot_id,
                                 dp.c.name.label("depot_name"), dp.c.wholesaler)
                       .outerjoin(dp, and_(dp.c.session_id == p.c.session_id, dp.c.depot_id == p.c.depot_id))
                       .where(p.c.session_id.in_(ids), p.c.finess == finess))
    return {row["session_id"]: {k: _text(v) for k, v in row.items() if k != "session_id"}
            for row in frame.to_dict("records")}


def _lines(c: Connection, finess: str, ids: list[str]) -> dict[int, list[dict]]:
    """Each run's lines of the officine, in submission order, with their deliveries."""
    d, r, o, pr, v = T["decisions"], T["runs"], T["orders"], T["professionals"], T["deliveries"]
    mine = and_(r.c.session_id.in_(ids), o.c.session_id == r.c.session_id, o.c.finess == finess)
    lines = read_frame(c, select(d.c.run_id, d.c.order_id, o.c.effector, o.c.rpps, pr.c.name.label("professional"),
                                 o.c.vaccine, o.c.injection, d.c.requested, d.c.allocated, d.c.status, d.c.reason,
                                 d.c.rank)
                       .select_from(d).join(r, r.c.id == d.c.run_id).join(o, and_(mine, o.c.order_id == d.c.order_id))
                       .outerjoin(pr, and_(pr.c.session_id == o.c.session_id, pr.c.rpps == o.c.rpps)))
    deliveries = read_frame(c, select(v.c.run_id, v.c.order_id, v.c.delivery_date, v.c.vials, v.c.depot_id, v.c.status)
                            .select_from(v).join(r, r.c.id == v.c.run_id)
                            .join(o, and_(mine, o.c.order_id == v.c.order_id)))
    days = defaultdict(list)
    # Dated days first, in date order; the pending remainder last (R8).
    for row in sorted(deliveries.itertuples(index=False),
                      key=lambda x: (x.run_id, x.order_id, x.delivery_date is None, str(x.delivery_date), x.depot_id)):
        days[(int(row.run_id), row.order_id)].append({
            "date": _iso(row.delivery_date), "vials": int(row.vials), "depot_id": row.depot_id, "status": row.status})
    found = defaultdict(list)
    for row in lines.sort_values(["run_id", "rank", "order_id"], kind="stable").itertuples(index=False):
        found[int(row.run_id)].append({
            "order_id": row.order_id, "effector": row.effector, "rpps": row.rpps,
            "professional": _text(row.professional), "vaccine": row.vaccine, "injection": row.injection,
            "requested": int(row.requested), "allocated": int(row.allocated), "status": row.status,
            "reason": row.reason, "rank": int(row.rank), "deliveries": days.get((int(row.run_id), row.order_id), [])})
    return found


def _emails(c: Connection, finess: str, ids: list[str]) -> dict[int, list[dict]]:
    b, r = T["outbox"], T["runs"]
    frame = read_frame(c, select(b.c.run_id, b.c.message_id, b.c.state, b.c.attempts, b.c.sent_at, b.c.replaces,
                                 b.c.detail).join(r, r.c.id == b.c.run_id)
                       .where(r.c.session_id.in_(ids), b.c.recipient_id == finess, b.c.recipient_kind == "officine")
                       .order_by(b.c.run_id, b.c.id))
    found = defaultdict(list)
    for row in frame.itertuples(index=False):
        found[int(row.run_id)].append({
            "message_id": row.message_id, "state": row.state, "attempts": int(row.attempts),
            "sent_at": _iso(row.sent_at), "replaces": _text(row.replaces), "detail": _text(row.detail)})
    return found


def list_runs(engine: Engine, session_id: str) -> list[dict]:
    """Every run version of the session, oldest first, with what it holds (`vialflow runs`)."""
    s, r, d, v, b = T["sessions"], T["runs"], T["decisions"], T["deliveries"], T["outbox"]
    of_session = r.c.session_id == session_id
    with engine.connect() as c:
        if c.execute(select(s.c.id).where(s.c.id == session_id)).first() is None:
            raise LookupError(f"unknown session {session_id}")
        runs = read_frame(c, select(r.c.id, r.c.version, r.c.created_at, r.c.operator, r.c.reason, r.c.input_hash,
                                    *[r.c[n] for n in STAMPS], r.c.error).where(of_session).order_by(r.c.version))
        changes = dict(c.execute(select(r.c.id, r.c.changes).where(of_session)).all())  # JSON decoded by SQLAlchemy
        lines = read_frame(c, select(d.c.run_id, func.count().label("lines"), func.sum(d.c.allocated).label("vials"))
                           .join(r, r.c.id == d.c.run_id).where(of_session).group_by(d.c.run_id))
        vials = read_frame(c, select(v.c.run_id, v.c.status, func.sum(v.c.vials).label("vials"))
                           .join(r, r.c.id == v.c.run_id).where(of_session).group_by(v.c.run_id, v.c.status))
        emails = read_frame(c, select(b.c.run_id, b.c.state, func.count().label("n"))
                            .join(r, r.c.id == b.c.run_id).where(of_session).group_by(b.c.run_id, b.c.state))
    counted = {int(x.run_id): (int(x.lines), int(x.vials or 0)) for x in lines.itertuples()}
    delivered = {(int(x.run_id), x.status): int(x.vials) for x in vials.itertuples()}
    by_state = defaultdict(dict)
    for x in emails.sort_values("state").itertuples():
        by_state[int(x.run_id)][x.state] = int(x.n)
    found = []
    for run in runs.itertuples():
        key = int(run.id)
        n_lines, allocated = counted.get(key, (0, 0))
        found.append({
            "version": int(run.version), "created_at": _iso(run.created_at), "operator": run.operator,
            "reason": run.reason, "changes": changes.get(key) or {}, "input_hash": run.input_hash[:12],
            **{n: _iso(getattr(run, n)) for n in STAMPS}, "error": _text(run.error),
            "counts": {"lines": n_lines, "allocated_vials": allocated,
                       "scheduled_vials": delivered.get((key, "scheduled"), 0),
                       "pending_vials": delivered.get((key, "pending"), 0), "emails": by_state.get(key, {})}})
    return found


def _step(run) -> str:
    """The last step the run has stored, as `services.progress` names it."""
    for name, stamp in (("sending", "sending_at"), ("prepared", "prepared_at"), ("scheduled", "scheduled_at"),
                        ("allocated", "allocated_at")):
        if _iso(getattr(run, stamp)) is not None:
            return name
    return "allocating"


def _iso(value) -> str | None:
    """A date or instant as ISO 8601 (instants in UTC); None for a missing one."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return value if isinstance(value, str) else value.isoformat()


def _text(value) -> str | None:
    return None if value is None or (not isinstance(value, str) and pd.isna(value)) else str(value)


# Terminal rendering. Every cell and title is a `Text`, so that a `[` in a name is not read as markup.

def lookup_table(data: dict) -> RenderableType:
    """What `lookup` returned, as tables: the officine, then per run its lines and emails."""
    parts: list[RenderableType] = []
    for session in data["sessions"]:
        officine = session["officine"]
        head = Table.grid(padding=(0, 2))
        head.add_column(style="bold")
        head.add_column()
        head.add_row(Text("Session"), Text(f"{session['session_id']}  {session['title']}"))
        head.add_row(Text("Closes"), Text(f"{_when(session['closes_at'])} ({session['state']})"))
        if officine is None:
            head.add_row(Text("Officine"), Text(f"{data['finess']}: not in this session's pharmacies register"))
        else:
            head.add_row(Text("Officine"),
                         Text(f"{officine['finess']}  {officine['name']}  dept {officine['department']}"))
            head.add_row(Text("Email"), Text(officine["email"] or ""))
            head.add_row(Text("Depot"), Text(f"{officine['depot_id']}  {officine['depot_name'] or ''}  "
                                             f"({officine['wholesaler'] or 'unknown wholesaler'})"))
        parts.extend([Text(""), head])
        if not session["runs"]:
            parts.append(Text("No run yet: the session is not closed.", style="italic"))
        depot = officine["depot_id"] if officine else None
        for run in session["runs"]:
            parts.append(_lines_table(run, depot))
            parts.extend(Text(f"Redistributed: {item.get('vials')} vial(s) of {item.get('order_id')} "
                              f"to RPPS {item.get('to_rpps')}") for item in run.get("redistributions", []))
            parts.append(_emails_table(run))
    return Group(*parts)


def _lines_table(run: dict, depot: str | None) -> Table:
    title = f"Run {run['version']} · {_when(run['created_at'])} · {run['operator']} · {run['reason']} · {run['step']}"
    table = Table(title=Text(title), title_justify="left", show_lines=True,
                  caption=Text("Vials: allocated of requested."), caption_justify="left")
    # Order ids, volumes and dates are what an adviser reads out: never cut; the rest wraps. Fits 80 columns.
    for heading, keep, least in (("Order", True, None), ("Effector", False, 11), ("Vaccine", False, 11),
                                 ("Vials", True, None), ("Status", False, 7), ("Deliveries", True, None)):
        table.add_column(heading, no_wrap=keep, overflow="fold", min_width=least)
    for line in run["lines"]:
        who = "\n".join(x for x in (line["effector"], line["professional"], line["rpps"]) if x)
        # The depot is the officine's (shown above) unless the register says otherwise.
        days = "\n".join(f"{d['date'] or PENDING}: {d['vials']}"
                         + (f" ({d['depot_id']})" if d["depot_id"] != depot else "") for d in line["deliveries"])
        status = line["status"] if line["reason"] == "ok" else f"{line['status']}\n{line['reason']}"
        cells = (line["order_id"], who, f"{line['vaccine']}\n{line['injection']}",
                 f"{line['allocated']} of {line['requested']}", status, days or "—")
        table.add_row(*(Text(x) for x in cells))
    if not run["lines"]:
        table.caption = Text("no line of this officine in this run")
    return table


def _emails_table(run: dict) -> RenderableType:
    if not run["emails"]:
        return Text(f"Run {run['version']}: no email to this officine.", style="italic")
    table = Table(title=Text(f"Emails of run {run['version']}"), title_justify="left", show_lines=True)
    table.add_column("Message-ID", no_wrap=True)
    for heading in ("State", "Tries", "Detail"):
        table.add_column(heading, overflow="fold")
    for email in run["emails"]:
        message = email["message_id"] + (f"\nannule et remplace\n{email['replaces']}" if email["replaces"] else "")
        state = email["state"] + (f"\n{_when(email['sent_at'])}" if email["sent_at"] else "")
        table.add_row(*(Text(x) for x in (message, state, str(email["attempts"]), email["detail"] or "")))
    return table


def runs_table(runs: list[dict]) -> RenderableType:
    """What `list_runs` returned: one field/value table per version, oldest first."""
    if not runs:
        return Text("No run yet: the session is not closed.", style="italic")
    parts = []
    for run in runs:
        counts = run["counts"]
        table = Table(title=Text(f"Run {run['version']} · {_when(run['created_at'])} · {run['operator']}"),
                      title_justify="left", show_header=False)
        table.add_column(style="bold", no_wrap=True)
        table.add_column()
        rows = [
            ("Reason", run["reason"]),
            ("Changes", json.dumps(run["changes"], ensure_ascii=False, sort_keys=True) if run["changes"] else "—"),
            ("Input hash", run["input_hash"]),
            ("Steps", "\n".join(f"{n[:-3]} {_when(run[n])}" for n in STAMPS if run[n]) or "—"),
            ("Lines", str(counts["lines"])),
            ("Vials", f"{counts['allocated_vials']} allocated: {counts['scheduled_vials']} scheduled, "
                      f"{counts['pending_vials']} {PENDING}"),
            ("Emails", ", ".join(f"{state} {n}" for state, n in counts["emails"].items()) or "—"),
        ]
        if run["error"]:
            rows.append(("Error", run["error"]))
        for name, value in rows:
            table.add_row(Text(name), Text(value))
        parts.append(table)
    return Group(*parts)


def _when(iso: str | None) -> str:
    """An ISO instant in UTC as `YYYY-MM-DD HH:MM UTC`."""
    return f"{iso[:16].replace('T', ' ')} UTC" if iso else ""
