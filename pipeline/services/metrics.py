"""What `vialflow metrics` exposes, read from the database at each scrape: every worker's work counts.

Emails per session, run and outbox state; lines per vaccine, status and reason; vials requested,
allocated, scheduled and pending; the age of the oldest email still waiting; each step's last
duration from the latest run's stamps; the runs where a step or a view failed. Runs are labelled by their version, as in summary.json.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import Engine

from pipeline.adapters.db import queries
from pipeline.domain.outbox import STATES, TERMINAL

# Each step's duration: from the stamp before it to its own.
STEPS = (("allocate", "created_at", "allocated_at"), ("schedule", "allocated_at", "scheduled_at"),
         ("prepare_confirmations", "scheduled_at", "prepared_at"), ("send", "sending_at", "settled_at"))


@dataclass
class Snapshot:
    emails: list[tuple[str, str, str, int]] = field(default_factory=list)             # session, run, state, n
    lines: list[tuple[str, str, str, str, str, int]] = field(default_factory=list)    # ..., vaccine, status, reason, n
    vials: list[tuple[str, str, str, str, int]] = field(default_factory=list)         # ..., vaccine, stage, vials
    oldest_waiting: list[tuple[str, float]] = field(default_factory=list)             # session, seconds
    steps: list[tuple[str, str, str, float]] = field(default_factory=list)            # session, run, step, seconds
    failures: list[tuple[str, str, str]] = field(default_factory=list)                # session, run, step|view


def snapshot(engine: Engine, now: dt.datetime) -> Snapshot:
    found = Snapshot()
    with engine.connect() as c:
        emails = {(s, str(v), state): int(n) for s, v, state, n in queries.metric_emails(c)}
        for s, v in {key[:2] for key in emails}:
            for state in STATES:
                emails.setdefault((s, v, state), 0)
        found.emails = [(*key, n) for key, n in sorted(emails.items())]
        vials: dict[tuple, int] = {}
        for s, v, vaccine, status, reason, n, requested, allocated in queries.metric_lines(c):
            found.lines.append((s, str(v), vaccine, status, reason, int(n)))
            for stage, value in (("requested", requested), ("allocated", allocated)):
                vials[(s, str(v), vaccine, stage)] = vials.get((s, str(v), vaccine, stage), 0) + int(value or 0)
        for key in list(vials):  # every vaccine with lines shows all four stages, 0 included
            for stage in ("scheduled", "pending"):
                vials.setdefault((*key[:3], stage), 0)
        for s, v, vaccine, status, n in queries.metric_deliveries(c):
            vials[(s, str(v), vaccine, status)] = int(n or 0)
        found.vials = [(*key, n) for key, n in sorted(vials.items())]
        found.oldest_waiting = [(s, max(0.0, (now - _aware(at)).total_seconds())) for s, at in
                                queries.metric_oldest_waiting(c, TERMINAL) if at is not None]
        waiting = {(s, v) for s, v, state, n in found.emails if state not in TERMINAL and n}
        for row in queries.metric_stamps(c):
            stamps = dict(row._mapping)
            if stamps["settled_at"] is None and (row.session_id, str(row.version)) not in waiting:
                stamps["settled_at"] = stamps["last_sent_at"]  # a run settled before runs were stamped so
            for step, start, end in STEPS:
                if stamps[start] is not None and stamps[end] is not None:
                    seconds = (_aware(stamps[end]) - _aware(stamps[start])).total_seconds()
                    found.steps.append((row.session_id, str(row.version), step, max(0.0, seconds)))
        found.failures = [(s, str(v), part) for s, v, step, view in queries.metric_failures(c)
                          for part, failed in (("step", step), ("view", view)) if failed]
    return found


def _aware(when: dt.datetime) -> dt.datetime:
    return when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)
