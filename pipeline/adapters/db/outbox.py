"""The outbox (R9–R11): who a run writes to, each email's row and its lease, from written to settled.

Every hand-over is a lease (`lease_until`): a row handed to the email queue, claimed or going out is
spoken for until then. Functions take an open connection; services own transactions.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
from sqlalchemy import Connection, and_, bindparam, func, or_, select, update

from pipeline.domain.rules import NAMED_KINDS
from pipeline.domain.vocabulary import SETTLED, EmailState

from .frames import among, insert_frame, read_frame
from .tables import Base

T = Base.metadata.tables
WAITING = (EmailState.PENDING, EmailState.RETRY)  # ready to go now, or once their next attempt is due
LOST_WHILE_SENDING = "no reply was recorded before the sender's lease ran out: it may have gone out"


def recipients(c: Connection, session_id: str, run: int) -> pd.DataFrame:
    """R9: every officine that ordered, and every doctor, occupational doctor and midwife named
    on a line, when the register gives an address. Columns recipient_id, recipient_kind."""
    o, d, p, pr = T["orders"], T["decisions"], T["pharmacies"], T["professionals"]
    of_run = and_(o.c.session_id == session_id, o.c.order_id == d.c.order_id, d.c.run_id == run)
    officines = select(p.c.finess.label("recipient_id")).where(
        p.c.session_id == session_id, p.c.finess.in_(select(o.c.finess).join(d, of_run)))
    named = select(pr.c.rpps.label("recipient_id"), pr.c.kind.label("recipient_kind")).where(
        pr.c.session_id == session_id,
        pr.c.rpps.in_(select(o.c.rpps).join(d, of_run).where(o.c.effector.in_(NAMED_KINDS))))
    frame = pd.concat([read_frame(c, officines).assign(recipient_kind="officine"), read_frame(c, named)])
    return frame.sort_values("recipient_id", kind="stable").reset_index(drop=True)


def professionals_kinds(c: Connection, session_id: str, rpps: list[str]) -> pd.DataFrame:
    pr = T["professionals"]
    return read_frame(c, select(pr.c.rpps.label("recipient_id"), pr.c.kind.label("recipient_kind"))
                      .where(pr.c.session_id == session_id, among(c, pr.c.rpps, rpps)))


def earlier_messages(c: Connection, session_id: str, version: int, recipients: list[str] | None = None) -> pd.Series:
    """Each recipient's (of `recipients`, else all) last Message-ID before this version (what a new
    email cancels and replaces)."""
    box, runs = T["outbox"], T["runs"]
    chosen = [among(c, box.c.recipient_id, recipients)] if recipients is not None else []
    earlier = read_frame(c, select(box.c.recipient_id, box.c.message_id).join(runs, runs.c.id == box.c.run_id)
                         .where(runs.c.session_id == session_id, runs.c.version < version, *chosen)
                         .order_by(runs.c.version))
    return earlier.drop_duplicates("recipient_id", keep="last").set_index("recipient_id")["message_id"]


def insert_outbox(c: Connection, run: int, outbox: pd.DataFrame) -> None:
    insert_frame(c, T["outbox"], outbox.assign(state=EmailState.PENDING.value, attempts=0), run_id=run)


def start_sending(c: Connection, run: int, now: dt.datetime) -> bool:
    runs = T["runs"]
    return c.execute(update(runs).where(runs.c.id == run, runs.c.sending_at.is_(None),
                                        runs.c.prepared_at.is_not(None)).values(sending_at=now)).rowcount == 1


def runs_to_confirm(c: Connection, now: dt.datetime) -> list[int]:
    """Prepared runs whose emails have not been handed over and whose session's `confirmation_at` has passed (R9)."""
    runs, sessions = T["runs"], T["sessions"]
    now = now.astimezone(dt.timezone.utc)
    return list(c.execute(select(runs.c.id).join(sessions, sessions.c.id == runs.c.session_id).where(
        runs.c.prepared_at.is_not(None), runs.c.sending_at.is_(None), sessions.c.confirmation_at <= now)
        .order_by(runs.c.id)).scalars())


def _ready(box, now: dt.datetime):
    """Rows that may be handed out now: never tried, or due for another try."""
    return or_(box.c.state == EmailState.PENDING, and_(box.c.state == EmailState.RETRY, box.c.next_attempt_at <= now))


def _free(box, now: dt.datetime):
    return or_(box.c.lease_until.is_(None), box.c.lease_until <= now)


def due(c: Connection, run: int, now: dt.datetime) -> list[int]:
    box = T["outbox"]
    return list(c.execute(select(box.c.id).where(box.c.run_id == run, _ready(box, now)).order_by(box.c.id)).scalars())


def hand_out(c: Connection, run: int, now: dt.datetime, until: dt.datetime, window: int | None = None) -> list[int]:
    """The run's rows ready to go and not already handed to the email queue (or handed so long ago
    that the message must have been lost), leased to the queue `until`. With `window`, only as many
    as keep at most `window` of the run's rows waiting in the queue; rows another hand-out is taking
    at the same moment are skipped (PostgreSQL), so two hand-outs never give the same row."""
    box = T["outbox"]
    chosen = select(box.c.id).where(box.c.run_id == run, _ready(box, now), _free(box, now))
    if window is None:
        chosen = chosen.order_by(box.c.id)
    else:
        queued = c.execute(select(func.count()).where(box.c.run_id == run, box.c.state.in_(WAITING),
                                                      box.c.lease_until > now)).scalar_one()
        if queued >= window:
            return []
        # No ORDER BY: the first rows an index gives, rather than sorting every row left at each hand-out.
        chosen = chosen.limit(window - queued).with_for_update(skip_locked=True)
    ids = sorted(c.execute(chosen).scalars())
    for start in range(0, len(ids), 10_000):
        c.execute(update(box).where(box.c.id.in_(ids[start:start + 10_000])).values(lease_until=until))
    return ids


def outbox_counts(c: Connection, run: int) -> dict[str, int]:
    box = T["outbox"]
    rows = c.execute(select(box.c.state, func.count()).where(box.c.run_id == run).group_by(box.c.state)).all()
    return {state: int(count) for state, count in rows}


def claim(c: Connection, ids: list[int], claimant: str, now: dt.datetime, until: dt.datetime) -> pd.DataFrame:
    """Claim the rows of `ids` still due for `claimant` until `until` and return them. Rows this
    same claimant left `sending` (it died while sending) become unknown: they may have gone out."""
    box = T["outbox"]
    c.execute(update(box).where(box.c.id.in_(ids), box.c.state == EmailState.SENDING, box.c.claimed_by == claimant)
              .values(state=EmailState.UNKNOWN, detail="the sending worker was lost while sending", lease_until=None))
    c.execute(update(box).where(
        box.c.id.in_(ids), or_(_ready(box, now), and_(box.c.state == EmailState.CLAIMED, box.c.claimed_by == claimant)))
        .values(state=EmailState.CLAIMED, claimed_by=claimant, lease_until=until))
    return read_frame(c, select(box).where(box.c.id.in_(ids), box.c.state == EmailState.CLAIMED,
                                           box.c.claimed_by == claimant).order_by(box.c.id))


def mark_sending(c: Connection, ids: list[int], claimant: str, until: dt.datetime) -> set[int]:
    """Mark `claimant`'s claimed rows among `ids` as going out; returns those it still held (a claim
    whose lease ran out may have been handed to another sender: that row is not sent twice)."""
    box = T["outbox"]
    mine = and_(box.c.id.in_(ids), box.c.state == EmailState.CLAIMED, box.c.claimed_by == claimant)
    return set(c.execute(update(box).where(mine).values(state=EmailState.SENDING, lease_until=until)
                         .returning(box.c.id)).scalars())


def record_outcomes(c: Connection, outcomes: list[dict]) -> None:
    """Each dict: outbox_id and the columns to set."""
    box = T["outbox"]
    c.execute(update(box).where(box.c.id == bindparam("outbox_id")),
              [{**outcome, "lease_until": None} for outcome in outcomes])


def release(c: Connection, ids: list[int], claimant: str, retry_at: dt.datetime) -> None:
    box = T["outbox"]
    mine = and_(box.c.id.in_(ids), box.c.claimed_by == claimant)
    c.execute(update(box).where(mine, box.c.state == EmailState.CLAIMED)
              .values(state=EmailState.RETRY, next_attempt_at=retry_at, lease_until=None))
    c.execute(update(box).where(mine, box.c.state == EmailState.SENDING).values(
        state=EmailState.UNKNOWN, detail="no reply was recorded for this message", lease_until=None))


def recover_leases(c: Connection, now: dt.datetime, session_id: str | None = None, everything: bool = False) -> dict:
    """Stale claims back to `pending`, stale `sending` rows to `unknown` (never resent blindly).
    With `everything`, every claim of the session's runs whatever its lease: its sender is known
    to be gone (the embedded worker of a command that was stopped)."""
    box, runs = T["outbox"], T["runs"]
    # A claim without a lease was taken before leases existed (migration 0003): it counts as run out.
    scope = [or_(box.c.lease_until.is_(None), box.c.lease_until <= now)] if not everything else []
    if session_id is not None:
        scope.append(box.c.run_id.in_(select(runs.c.id).where(runs.c.session_id == session_id)))
    lost = c.execute(update(box).where(box.c.state == EmailState.SENDING, *scope).values(
        state=EmailState.UNKNOWN, detail=LOST_WHILE_SENDING, lease_until=None)).rowcount
    back = c.execute(update(box).where(box.c.state == EmailState.CLAIMED, *scope).values(
        state=EmailState.PENDING, claimed_by=None, lease_until=None)).rowcount
    if everything:  # rows handed to a queue that died with its command
        c.execute(update(box).where(box.c.state.in_(WAITING), *scope).values(lease_until=None))
    return {"unknown": lost, "pending": back}


def runs_with_stranded_emails(c: Connection, now: dt.datetime) -> list[int]:
    """Runs whose emails were handed over and that still have rows ready and unleased: their
    message never reached a worker, or it was lost."""
    box, runs = T["outbox"], T["runs"]
    # One EXISTS per run handed over: it stops at the first such row, where a DISTINCT over the rows
    # read every row still waiting, at each of beat's ticks (a quarter of a second at 400 000 emails).
    stranded = select(box.c.id).where(box.c.run_id == runs.c.id, _ready(box, now), _free(box, now)).exists()
    return list(c.execute(select(runs.c.id).where(runs.c.sending_at.is_not(None), runs.c.settled_at.is_(None), stranded)
                          .order_by(runs.c.id)).scalars())


def settle(c: Connection, run: int, now: dt.datetime) -> bool:
    """Stamp the run settled once none of its emails is still waiting; True for the one caller
    that stamped it."""
    box, runs = T["outbox"], T["runs"]
    waiting = select(box.c.id).where(box.c.run_id == run, box.c.state.not_in(SETTLED)).exists()
    return c.execute(update(runs).where(runs.c.id == run, runs.c.settled_at.is_(None), runs.c.sending_at.is_not(None),
                                        ~waiting).values(settled_at=now)).rowcount == 1


def runs_unsettled(c: Connection) -> list[int]:
    runs = T["runs"]
    return list(c.execute(select(runs.c.id).where(runs.c.sending_at.is_not(None), runs.c.settled_at.is_(None))
                          .order_by(runs.c.id)).scalars())


def runs_of_outbox(c: Connection, ids: list[int]) -> list[int]:
    box = T["outbox"]
    return list(c.execute(select(box.c.run_id).where(among(c, box.c.id, ids)).distinct()
                          .order_by(box.c.run_id)).scalars())


def reopen_for_resend(c: Connection, ids: list[int], states: tuple[str, ...]) -> list[int]:
    """Put the rows of `ids` that are in `states` back to `pending`; returns those it reopened."""
    box, runs = T["outbox"], T["runs"]
    reopened = list(c.execute(select(box.c.id).where(among(c, box.c.id, ids), box.c.state.in_(states))).scalars())
    if reopened:
        c.execute(update(box).where(among(c, box.c.id, reopened))
                  .values(state=EmailState.PENDING, claimed_by=None, lease_until=None, next_attempt_at=None))
        run_ids = select(box.c.run_id).where(among(c, box.c.id, reopened)).distinct()
        c.execute(update(runs).where(runs.c.id.in_(run_ids)).values(settled_at=None))
    return reopened


def outbox_listing(c: Connection, session_id: str, run: int | None, state: str | None,
                   addresses: bool = False, limit: int | None = None, offset: int = 0) -> pd.DataFrame:
    """A session's outbox rows (one run, or all) with their version; addresses only when asked;
    `limit` rows from `offset` (a page of the console's outbox)."""
    box, runs, ph, pr = T["outbox"], T["runs"], T["pharmacies"], T["professionals"]
    columns = [box.c.id, runs.c.version, box.c.recipient_id, box.c.recipient_kind, box.c.state, box.c.attempts,
               box.c.sent_at, box.c.next_attempt_at, box.c.detail, box.c.message_id]
    query = select(*columns).join(runs, runs.c.id == box.c.run_id).where(runs.c.session_id == session_id)
    if addresses:
        email = func.coalesce(ph.c.email, pr.c.email).label("email")
        query = (select(*columns, email).join(runs, runs.c.id == box.c.run_id)
                 .outerjoin(ph, and_(ph.c.session_id == session_id, ph.c.finess == box.c.recipient_id,
                                     box.c.recipient_kind == "officine"))
                 .outerjoin(pr, and_(pr.c.session_id == session_id, pr.c.rpps == box.c.recipient_id,
                                     box.c.recipient_kind != "officine"))
                 .where(runs.c.session_id == session_id))
    if run is not None:
        query = query.where(box.c.run_id == run)
    if state is not None:
        query = query.where(box.c.state == state)
    query = query.order_by(runs.c.version, box.c.id)
    return read_frame(c, query if limit is None else query.limit(limit).offset(offset))


def outbox_total(c: Connection, session_id: str, state: str | None) -> int:
    box, runs = T["outbox"], T["runs"]
    query = select(func.count()).select_from(box).join(runs, runs.c.id == box.c.run_id).where(
        runs.c.session_id == session_id)
    return int(c.execute(query if state is None else query.where(box.c.state == state)).scalar_one())


def outbox_rows(c: Connection, run: int, state: str | None = None) -> pd.DataFrame:
    box = T["outbox"]
    query = select(box).where(box.c.run_id == run)
    return read_frame(c, (query.where(box.c.state == state) if state else query).order_by(box.c.id))


def officine_emails(c: Connection, finess: str, session_ids: list[str], people: list[str] | None = None) -> pd.DataFrame:
    """The emails of these sessions' runs to the officine, or (`people`) to these professionals."""
    b, r = T["outbox"], T["runs"]
    whom = and_(b.c.recipient_id == finess, b.c.recipient_kind == "officine") if people is None else \
        and_(among(c, b.c.recipient_id, people), b.c.recipient_kind != "officine")
    return read_frame(c, select(b.c.run_id, b.c.message_id, b.c.state, b.c.attempts, b.c.sent_at, b.c.replaces,
                                b.c.detail, b.c.id.label("outbox_id"), b.c.recipient_id).join(r, r.c.id == b.c.run_id)
                      .where(r.c.session_id.in_(session_ids), whom)
                      .order_by(b.c.run_id, b.c.id))


def outbox_row(c: Connection, outbox_id: int):
    """One email with its run's session and version."""
    b, r = T["outbox"], T["runs"]
    return c.execute(select(b, r.c.session_id, r.c.version).join(r, r.c.id == b.c.run_id)
                     .where(b.c.id == outbox_id)).first()
