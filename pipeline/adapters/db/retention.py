"""Purge: a settled session's personal data kept no longer than its emails need it."""

from __future__ import annotations

from sqlalchemy import Connection, func, select, update

from .tables import Base

T = Base.metadata.tables


def session_settlement(c: Connection, session_id: str, settled: tuple[str, ...]) -> dict:
    """Whether every email of every run of the session has settled (none in a state outside
    `settled`, every run's outbox written), and the last instant it did: the newest run's
    `settled_at`, or for a run settled before that stamp existed, its last email's `sent_at`
    (else the instant its emails were handed over)."""
    r, b = T["runs"], T["outbox"]
    runs = c.execute(select(r.c.id, r.c.prepared_at, r.c.sending_at, r.c.settled_at)
                     .where(r.c.session_id == session_id).order_by(r.c.version)).all()
    waiting = c.execute(select(func.count()).select_from(b).join(r, r.c.id == b.c.run_id)
                        .where(r.c.session_id == session_id, b.c.state.not_in(settled))).scalar_one()
    last_sent = c.execute(select(func.max(b.c.sent_at)).join(r, r.c.id == b.c.run_id)
                          .where(r.c.session_id == session_id)).scalar()
    done = bool(runs) and not waiting and all(run.prepared_at is not None for run in runs)
    instants = [run.settled_at or run.sending_at or run.prepared_at for run in runs] + [last_sent]
    return {"runs": len(runs), "waiting": int(waiting), "settled": done,
            "settled_at": max((i for i in instants if i is not None), default=None)}


def blank_contacts(c: Connection, session_id: str) -> dict[str, int]:
    """Names and email addresses of the session's officines and professionals, blanked (and cut
    out of the session's and its runs' failure messages, should one have quoted them); ids,
    kinds, departments, depots and attachments kept."""
    counts = {}
    values = set()
    for name in ("pharmacies", "professionals"):
        table = T[name]
        for person, email in c.execute(select(table.c.name, table.c.email).where(table.c.session_id == session_id)):
            values |= {person, email} - {""}
    for table, where in ((T["sessions"], T["sessions"].c.id == session_id),
                         (T["runs"], T["runs"].c.session_id == session_id)):
        for key, error in c.execute(select(table.c.id, table.c.error).where(where, table.c.error.is_not(None))):
            cut = error
            for value in sorted(values, key=len, reverse=True):
                cut = cut.replace(value, "")
            if cut != error:
                c.execute(update(table).where(table.c.id == key).values(error=cut))
    for name in ("pharmacies", "professionals"):
        table = T[name]
        counts[name] = c.execute(update(table).where(table.c.session_id == session_id)
                                 .values(name="", email="")).rowcount
    return counts
