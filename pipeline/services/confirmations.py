"""Confirmation emails (R9): an outbox row per recipient written with the run, then sent in claimed chunks.

Every email is a row before it is a message. A chunk claims its rows, marks a few at a time
`sending` just before handing them to the SMTP server, and records each outcome at once; a
redelivered chunk (same task id) turns its own rows left in `sending` into `unknown`: they may
have gone out, so they are reported, never resent blindly.

Every hand-over is a lease (`outbox.lease_until`): a row handed to the queue, claimed or going
out is spoken for until then. `recover` (beat's tick, and a rerun of the command) hands the
rows whose lease ran out again, or records them `unknown` if they were going out: no row stays
waiting because a message, a worker or a command was lost.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict

import pandas as pd
from sqlalchemy import Engine

from pipeline.adapters import logs
from pipeline.adapters.db import actions, lines, outbox, runs, sessions
from pipeline.adapters.mail.render import render
from pipeline.adapters.mail.smtp import Outcome, SmtpTarget, send_all_sync
from pipeline.domain.changes import RunChanges
from pipeline.domain.digest import run_digest
from pipeline.domain.outbox import changed_recipients, line_states, message_id, next_state
from pipeline.domain.vocabulary import Action, EmailState, RunStep
from pipeline.settings import Settings

from .chain import PREPARE
from .letters import confirmations
from .refusals import NotResendable, OperatorRequired, ReasonRequired, UnknownSession
from .runs import DONE, gate

BATCH = 32  # messages marked `sending`, or outcomes recorded, at once: a crash leaves at most two batches unknown

__all__ = ["prepare_confirmations", "start_sending", "runs_to_confirm", "due", "hand_out", "recover",
           "settle", "outbox_counts", "outbox_listing", "resend", "send_chunk"]
RESENDABLE = (EmailState.UNKNOWN, EmailState.FAILED)


def prepare_confirmations(engine: Engine, run: int, now: dt.datetime) -> str:
    """Write the run's outbox: one pending row per recipient."""
    with engine.begin() as c:
        outcome, row = gate(c, run, PREPARE)
        if outcome:
            return outcome
        with logs.step(RunStep.PREPARE, session=row.session_id, run=row.version, run_id=run) as counts:
            rows = outbox.recipients(c, row.session_id, run)
            if row.version > 1:
                rows = _changed_only(c, row, rows)
            rows["message_id"] = [message_id(row.session_id, row.version, r) for r in rows["recipient_id"]]
            outbox.insert_outbox(c, run, rows)
            digest = run_digest(runs.stored_decisions(c, run), runs.stored_deliveries(c, run))
            runs.stamp(c, run, prepared_at=now, digest=digest)
            counts.update(emails=len(rows))
    return DONE


def _changed_only(c, run, rows: pd.DataFrame) -> pd.DataFrame:
    """R11: a new version writes only to the recipients whose lines changed, or who are party to a
    new redistribution (R10), each email cancelling and replacing their previous one. Only the lines
    the database finds changed are read from both versions (all of them past READ_ALL)."""
    previous = runs.previous_run(c, run)
    wanted = sorted(set(lines.changed_lines(c, previous.id, run.id))
                    | {item.order_id for item in run.changes.added_since(previous.changes)})
    wanted = wanted if len(wanted) <= READ_ALL else None
    rows = rewritten(c, run.session_id, previous, run.changes,
                     lines.read(c, run.id, run.session_id, order_ids=wanted), rows, wanted)
    replaced = outbox.earlier_messages(c, run.session_id, run.version,
                                       rows["recipient_id"].tolist() if wanted is not None else None)
    rows["replaces"] = rows["recipient_id"].map(replaced)
    return rows


READ_ALL = 50_000  # changed lines past which both versions are read whole rather than by a list of ids


def rewritten(c, session_id: str, previous, changes: RunChanges, new: lines.Lines, rows: pd.DataFrame,
              order_ids: list[str] | None = None) -> pd.DataFrame:
    """The outbox `rows` (recipient_id, recipient_kind) that a version with these `changes` and
    these `new` lines writes to after `previous`: the recipients of the lines whose state changed
    and the parties of each new redistribution. `order_ids`: the only lines that may have changed
    (`new` holds those), else all. Shared with the preview of a reallocation."""
    old = lines.read(c, previous.id, session_id, order_ids=order_ids)
    parties = changes.added_since(previous.changes)
    touched = changed_recipients(line_states(old.lines, old.deliveries), line_states(new.lines, new.deliveries),
                                 parties)
    receivers = {item.to_rpps for item in parties} - set(rows["recipient_id"])
    if receivers:
        rows = pd.concat([rows, outbox.professionals_kinds(c, session_id, sorted(receivers))], ignore_index=True)
    return rows[rows["recipient_id"].isin(touched)].reset_index(drop=True)


def start_sending(engine: Engine, run: int, now: dt.datetime) -> bool:
    """Mark the run's emails as handed over, once: True for the one caller that should fan out."""
    with engine.begin() as c:
        return outbox.start_sending(c, run, now)


def runs_to_confirm(engine: Engine, now: dt.datetime) -> list[int]:
    """Prepared runs whose emails have not been handed over and whose session's
    `confirmation_at` has passed (R9)."""
    with engine.connect() as c:
        return outbox.runs_to_confirm(c, now)


def hand_out(engine: Engine, run: int, now: dt.datetime, lease: int, window: int | None = None) -> list[int]:
    """The run's emails ready to go that nobody holds, leased to the email queue for `lease` seconds;
    with `window`, no more than keep `window` of them waiting in the queue."""
    with engine.begin() as c:
        return outbox.hand_out(c, run, now, now + dt.timedelta(seconds=lease), window)


def recover(engine: Engine, now: dt.datetime, session_id: str | None = None, everything: bool = False) -> dict:
    """Leases that ran out: claims back to pending, rows that were going out to `unknown`. Returns
    those counts and `runs`, the runs with emails ready and unheld (to hand out again), and
    `settled`, the runs whose emails have all just settled. With `everything`, the session's
    claims whatever their lease (their embedded sender is known to be gone)."""
    with engine.begin() as c:
        found = outbox.recover_leases(c, now, session_id, everything)
        found["runs"] = outbox.runs_with_stranded_emails(c, now)
        found["settled"] = [run for run in outbox.runs_unsettled(c) if outbox.settle(c, run, now)]
    return found


def settle(engine: Engine, run: int, now: dt.datetime) -> bool:
    """Stamp the run settled if none of its emails is waiting: True for the one caller that did."""
    with engine.begin() as c:
        return outbox.settle(c, run, now)


def outbox_listing(engine: Engine, session_id: str, run: int | None = None, state: str | None = None,
                   addresses: bool = False) -> pd.DataFrame:
    """A session's emails: id, version, recipient_id, recipient_kind, state, attempts, sent_at,
    next_attempt_at, detail, message_id (and email, only when `addresses`)."""
    with engine.connect() as c:
        if sessions.session_row(c, session_id) is None:
            raise UnknownSession(session_id)
        return outbox.outbox_listing(c, session_id, run, state, addresses)


def outbox_page(engine: Engine, session_id: str, state: str | None, limit: int, offset: int) -> tuple[pd.DataFrame, int]:
    """`limit` of the session's emails from `offset` (all runs, as outbox_listing), and how many there are."""
    with engine.connect() as c:
        if sessions.session_row(c, session_id) is None:
            raise UnknownSession(session_id)
        return (outbox.outbox_listing(c, session_id, None, state, limit=limit, offset=offset),
                outbox.outbox_total(c, session_id, state))


def resend(engine: Engine, session_id: str, run: int | None, state: str | None, operator: str, reason: str,
           now: dt.datetime, ids: list[int] | None = None, address: str | None = None) -> list[int]:
    """Put the session's `unknown` or `failed` emails (of one run, one state, or the given `ids`)
    back in the outbox, deliberately, recorded with who and why. Returns the reopened ids; the
    caller hands their runs out."""
    if not operator.strip():
        raise OperatorRequired()
    if not reason.strip():
        raise ReasonRequired()
    if state is not None and state not in RESENDABLE:
        raise NotResendable(state)
    listed = outbox_listing(engine, session_id, run, state)
    chosen = listed[listed["state"].isin(RESENDABLE)]
    if ids is not None:
        chosen = chosen[chosen["id"].isin(ids)]
    with engine.begin() as c:
        reopened = outbox.reopen_for_resend(c, [int(i) for i in chosen["id"]], RESENDABLE)
        if reopened:
            actions.record_action(c, now, operator.strip(), Action.RESEND, session_id=session_id, reason=reason.strip(),
                                  run_id=run, target=f"{len(reopened)} email(s)", detail={"outbox_ids": reopened},
                                  address=address)
    return reopened


def due(engine: Engine, run: int, now: dt.datetime) -> list[int]:
    """Outbox ids of the run that are ready to go: never tried, or due for another try."""
    with engine.connect() as c:
        return outbox.due(c, run, now)


def outbox_counts(engine: Engine, run: int) -> dict[str, int]:
    with engine.connect() as c:
        return outbox.outbox_counts(c, run)


def send_chunk(engine: Engine, ids: list[int], claimant: str, now: dt.datetime, target: SmtpTarget,
               sender: str, connections: int = 8, delays: tuple[int, ...] = Settings.retry_delays,
               send=send_all_sync, lease: int = Settings.lease_seconds) -> dict[str, int]:
    """Send the outbox rows `ids` that are still due; returns how many ended in each state.

    Rows are marked `sending` a batch at a time just before they go out, and outcomes are recorded
    a batch at a time as they come back: a crash leaves at most two batches in `sending`. `send` is
    the SMTP port (`send_all_sync`'s shape); the service tests give it a fake. Each claim, and each
    batch going out, is held for `lease` seconds from when it is taken.
    """
    clock = lambda: max(now, dt.datetime.now(dt.timezone.utc))  # noqa: E731 - `now` may be a test's fixed instant
    with engine.begin() as c:
        mine = outbox.claim(c, ids, claimant, now, clock() + dt.timedelta(seconds=lease))
        run = runs.run_row(c, int(mine["run_id"].iloc[0])) if len(mine) else None
        letters = list(zip(mine["id"].tolist(), _letters(c, mine, sender)))
    counts: dict[str, int] = defaultdict(int)
    attempts = dict(zip(mine["id"].tolist(), mine["attempts"].tolist()))
    outcomes: list[dict] = []
    envelope_sender = _address(sender)

    def record() -> None:
        with engine.begin() as c:
            outbox.record_outcomes(c, outcomes)
        outcomes.clear()

    def on_result(outbox_id: int, outcome: Outcome, detail: str) -> None:
        values = next_state(outcome.value, detail, attempts[outbox_id] + 1, now, delays)
        counts[values["state"]] += 1
        if values["state"] != "sent":  # the detail is the server's reply, its addresses already removed
            logs.log.warning("email %d: %s (%s)", outbox_id, values["state"], detail, extra={"step": RunStep.SEND})
        outcomes.append({"outbox_id": outbox_id, "sent_at": None, "next_attempt_at": None, **values})
        if len(outcomes) >= BATCH:
            record()

    def feed():
        for start in range(0, len(letters), BATCH):
            batch = []
            for outbox_id, confirmation in letters[start:start + BATCH]:
                try:
                    batch.append((outbox_id, envelope_sender, confirmation.email, render(confirmation)))
                except ValueError:  # an address or name the register gave that no email can carry
                    on_result(outbox_id, Outcome.FAILED, "not sent: the register's address or name cannot be used")
            recorded = outcomes[:]  # outcomes that came back meanwhile: one transaction with the marking
            with engine.begin() as c:
                if recorded:
                    outbox.record_outcomes(c, recorded)
                held = outbox.mark_sending(c, [item[0] for item in batch], claimant,
                                            clock() + dt.timedelta(seconds=lease))
            del outcomes[:len(recorded)]
            yield from (item for item in batch if item[0] in held)

    with logs.step(RunStep.SEND, session=run and run.session_id, run=run and run.version, run_id=run and run.id) as logged:
        try:
            send(target, feed(), connections=connections, on_result=on_result)
        finally:
            if outcomes:
                record()
            # Whatever happened: rows claimed but never started go back to be tried again, rows left
            # `sending` (no outcome came back) are unknown. Nothing stays stuck.
            with engine.begin() as c:
                outbox.release(c, ids, claimant, now + dt.timedelta(seconds=delays[0] if delays else 0))
        logged.update(claimed=len(mine), **counts)
    return dict(counts)


def runs_of(engine: Engine, ids: list[int]) -> list[int]:
    with engine.connect() as c:
        return outbox.runs_of_outbox(c, ids)


def _letters(c, rows: pd.DataFrame, sender: str) -> list:
    if rows.empty:
        return []
    return confirmations(c, runs.run_row(c, int(rows["run_id"].iloc[0])), rows, sender)


def _address(mailbox: str) -> str:
    found = re.search(r"<([^<>]+)>", mailbox)
    return found.group(1) if found else mailbox.strip()
