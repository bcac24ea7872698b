"""What `vialflow metrics` exposes, read from the database at each scrape: every worker's work counts.

Emails per session, run and outbox state; lines per vaccine, status and reason; vials requested,
allocated, scheduled and pending; the age of the oldest email still waiting; each step's last
duration from the latest run's stamps; the runs where a step or a view failed. Runs are labelled by their version, as in summary.json.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import Engine

from pipeline.adapters.db import metrics
from pipeline.domain.vocabulary import SETTLED, EmailState

from .chain import ALLOCATE, PREPARE, SCHEDULE, SEND

# Each step's duration: from the stamp before it to its own (the emails': from handed over to settled).
STEPS = ((ALLOCATE.code, "created_at", ALLOCATE.stamp), (SCHEDULE.code, ALLOCATE.stamp, SCHEDULE.stamp),
         (PREPARE.code, SCHEDULE.stamp, PREPARE.stamp), (SEND.code, SEND.stamp, "settled_at"))


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
        emails = {(s, str(v), state): int(n) for s, v, state, n in metrics.emails(c)}
        for s, v in {key[:2] for key in emails}:
            for state in EmailState:  # every state for each run, 0 included: an alert on one has a series to read
                emails.setdefault((s, v, state.value), 0)
        found.emails = [(*key, n) for key, n in sorted(emails.items())]
        vials: dict[tuple, int] = {}
        for s, v, vaccine, status, reason, n, requested, allocated in metrics.lines(c):
            found.lines.append((s, str(v), vaccine, status, reason, int(n)))
            for stage, value in (("requested", requested), ("allocated", allocated)):
                vials[(s, str(v), vaccine, stage)] = vials.get((s, str(v), vaccine, stage), 0) + int(value or 0)
        for key in list(vials):  # every vaccine with lines shows all four stages, 0 included
            for stage in ("scheduled", "pending"):
                vials.setdefault((*key[:3], stage), 0)
        for s, v, vaccine, status, n in metrics.deliveries(c):
            vials[(s, str(v), vaccine, status)] = int(n or 0)
        found.vials = [(*key, n) for key, n in sorted(vials.items())]
        found.oldest_waiting = [(s, max(0.0, (now - _aware(at)).total_seconds())) for s, at in
                                metrics.oldest_waiting(c, SETTLED) if at is not None]
        waiting = {(s, v) for s, v, state, n in found.emails if state not in SETTLED and n}
        for row in metrics.latest_stamps(c):
            stamps = dict(row._mapping)
            if stamps["settled_at"] is None and (row.session_id, str(row.version)) not in waiting:
                stamps["settled_at"] = stamps["last_sent_at"]  # a run settled before runs were stamped so
            for step, start, end in STEPS:
                if stamps[start] is not None and stamps[end] is not None:
                    seconds = (_aware(stamps[end]) - _aware(stamps[start])).total_seconds()
                    found.steps.append((row.session_id, str(row.version), step.value, max(0.0, seconds)))
        found.failures = [(s, str(v), part) for s, v, step, view in metrics.failures(c)
                          for part, failed in (("step", step), ("view", view)) if failed]
    return found


def _aware(when: dt.datetime) -> dt.datetime:
    return when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)
