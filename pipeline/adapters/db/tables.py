"""The database: a session and its registers and orders as loaded, then each allocation run.

Registers are stored per session: a session is allocated against the registers it was closed
with, so a later register change never rewrites an earlier run.

One module, over 300 lines, on purpose: the whole schema in one place, beside the migrations that
build it, so that a reader checks a table against its neighbours and its migration at once.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (JSON, BigInteger, Boolean, CheckConstraint, Date, DateTime, Float, ForeignKey, Index, Integer,
                        String, Text, TypeDecorator, UniqueConstraint)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from pipeline.domain.changes import RunChanges
from pipeline.domain.vocabulary import EmailState, RunStep

UTC = DateTime(timezone=True)


class StoredChanges(TypeDecorator):
    """A run's changes: JSON in the database, the domain's typed `RunChanges` once read."""

    impl = JSON
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return value.stored() if isinstance(value, RunChanges) else value

    def process_result_value(self, value, dialect):
        return RunChanges.model_validate(value or {})


def one_of(table: str, column: str, codes) -> CheckConstraint:
    """The column holds one of the vocabulary's codes (migration 0007 names it alike)."""
    listed = ", ".join(f"'{code.value}'" for code in codes)
    return CheckConstraint(f"{column} IN ({listed})", name=f"ck_{table}_{column}")


class Base(DeclarativeBase):
    pass


class SessionRow(Base):
    """One ordering session (a notice). `state`: open → closed; `confirmations_at` once sent."""

    __tablename__ = "sessions"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    rules: Mapped[dict] = mapped_column(JSON)  # the validated session.toml
    input_hash: Mapped[str] = mapped_column(String(64))  # of the session file, registers and orders
    closes_at: Mapped[dt.datetime] = mapped_column(UTC, index=True)
    confirmation_at: Mapped[dt.datetime] = mapped_column(UTC, index=True)
    state: Mapped[str] = mapped_column(String(16), default="open")
    loaded_at: Mapped[dt.datetime] = mapped_column(UTC)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTC)
    confirmations_started_at: Mapped[dt.datetime | None] = mapped_column(UTC)
    error: Mapped[str | None] = mapped_column(Text)  # why a step failed for good
    # One `vialflow run` or `reallocate` at a time per session: a lease its holder renews while it works.
    held_by: Mapped[str | None] = mapped_column(String(200))
    held_until: Mapped[dt.datetime | None] = mapped_column(UTC)


class Pharmacy(Base):
    __tablename__ = "pharmacies"
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"), primary_key=True)
    finess: Mapped[str] = mapped_column(String(9), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    email: Mapped[str] = mapped_column(Text)
    department: Mapped[str] = mapped_column(String(3))
    depot_id: Mapped[str] = mapped_column(String(32))


class Professional(Base):
    __tablename__ = "professionals"
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"), primary_key=True)
    rpps: Mapped[str] = mapped_column(String(11), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(Text)
    email: Mapped[str] = mapped_column(Text)
    finess: Mapped[str] = mapped_column(String(9))


class Depot(Base):
    __tablename__ = "depots"
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"), primary_key=True)
    depot_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    wholesaler: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(Text)
    capacity_vials: Mapped[int] = mapped_column(Integer)
    weekdays: Mapped[str] = mapped_column(String(64))


class DepotDay(Base):
    __tablename__ = "depot_days"
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"), primary_key=True)
    depot_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    date: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    capacity_vials: Mapped[int] = mapped_column(Integer)


class Order(Base):
    """An order line as submitted. `line` is its line in orders.csv."""

    __tablename__ = "orders"
    # An email reads the lines of its officine or of its professional.
    __table_args__ = (Index("ix_orders_finess", "session_id", "finess"), Index("ix_orders_rpps", "session_id", "rpps"))
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"), primary_key=True)
    order_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    line: Mapped[int] = mapped_column(Integer)
    submitted_at: Mapped[dt.datetime] = mapped_column(UTC)
    finess: Mapped[str] = mapped_column(String(16))
    effector: Mapped[str] = mapped_column(String(16))
    rpps: Mapped[str] = mapped_column(String(16))
    vaccine: Mapped[str] = mapped_column(String(32))
    injection: Mapped[str] = mapped_column(String(8))
    vials: Mapped[int] = mapped_column(Integer)


class Rejection(Base):
    """A row of orders.csv that was not an order."""

    __tablename__ = "rejections"
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"), primary_key=True)
    line: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[str] = mapped_column(Text)
    message: Mapped[str] = mapped_column(Text)


class Run(Base):
    """One allocation run of a session: version 1 at close, one more per reallocation (R11).

    Each step stamps its column when its results are stored, in the same transaction, so a
    step that finds its stamp set has nothing left to do.
    """

    __tablename__ = "runs"
    __table_args__ = (UniqueConstraint("session_id", "version"), UniqueConstraint("session_id", "input_hash"),
                      one_of("runs", "failed_step", RunStep))
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    operator: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
    changes: Mapped[RunChanges] = mapped_column(StoredChanges, default=dict)
    input_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTC)
    allocated_at: Mapped[dt.datetime | None] = mapped_column(UTC)
    scheduled_at: Mapped[dt.datetime | None] = mapped_column(UTC)
    prepared_at: Mapped[dt.datetime | None] = mapped_column(UTC)  # its outbox rows are written
    sending_at: Mapped[dt.datetime | None] = mapped_column(UTC)  # its emails were handed to the email queue
    exported_at: Mapped[dt.datetime | None] = mapped_column(UTC)  # its files were written to the export folder
    settled_at: Mapped[dt.datetime | None] = mapped_column(UTC)  # every email sent, failed or unknown
    error: Mapped[str | None] = mapped_column(Text)  # why a step failed for good
    failed_step: Mapped[str | None] = mapped_column(String(24))  # which step (a RunStep), NULL when none did
    # Why a view of the run (report.html) could not be written the last time its files were: its
    # data files were written all the same. Cleared when a later writing succeeds.
    view_failure: Mapped[str | None] = mapped_column(Text)
    # `sha256:<hex>` over the canonical form of its decisions and deliveries (domain/digest.py), stored
    # with its outbox at the end of prepare: summary.json and the report carry it.
    digest: Mapped[str | None] = mapped_column(String(71))


# Decisions and deliveries carry no foreign key to their run: a per-row trigger check would
# triple the time of storing a national run, and only the step holding the run's lock writes them.


class Decision(Base):
    """What one order line is allocated in one run, and why."""

    __tablename__ = "decisions"
    run_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    rank: Mapped[int] = mapped_column(Integer)
    requested: Mapped[int] = mapped_column(Integer)
    capped: Mapped[int] = mapped_column(Integer)
    allocated: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(8))
    reason: Mapped[str] = mapped_column(String(24))
    # The decision's trace (`vialflow explain`); NULL where a step did not apply to the line.
    cap: Mapped[int | None] = mapped_column(Integer)
    nurses: Mapped[int | None] = mapped_column(Integer)
    cap_used_before: Mapped[int | None] = mapped_column(Integer)
    after_cap: Mapped[int | None] = mapped_column(Integer)
    supply_before: Mapped[int | None] = mapped_column(Integer)
    pro_rata_share: Mapped[float | None] = mapped_column(Float)


class Delivery(Base):
    """One line's vials on one delivery day of one run; `delivery_date` empty when pending (R8)."""

    __tablename__ = "deliveries"
    __table_args__ = (Index("ix_deliveries_run_order", "run_id", "order_id"),)
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(Integer)
    order_id: Mapped[str] = mapped_column(String(32))
    depot_id: Mapped[str] = mapped_column(String(32))
    vaccine: Mapped[str] = mapped_column(String(32))
    delivery_date: Mapped[dt.date | None] = mapped_column(Date)
    vials: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(9))


class Outbox(Base):
    """One confirmation email of one run (R9): recorded with the run, before anything is sent.

    `state`: pending → claimed → sending → sent; or retry (a temporary SMTP error, again from
    `next_attempt_at`), failed (a permanent one) or unknown (the connection was lost after the
    message went out: never resent blindly). `claimed_by` is the sending task's id: a redelivered
    task knows its own rows.
    """

    __tablename__ = "outbox"
    __table_args__ = (UniqueConstraint("run_id", "recipient_id"),
                      Index("ix_outbox_state_lease", "state", "lease_until"), one_of("outbox", "state", EmailState))
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    recipient_id: Mapped[str] = mapped_column(String(16))  # FINESS or RPPS
    recipient_kind: Mapped[str] = mapped_column(String(16))  # officine or the professional's kind
    message_id: Mapped[str] = mapped_column(String(200), unique=True)
    replaces: Mapped[str | None] = mapped_column(String(200))  # R11: the Message-ID it cancels
    state: Mapped[str] = mapped_column(String(8), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTC)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTC)
    detail: Mapped[str | None] = mapped_column(Text)  # the last SMTP reply, never an address
    # Until when the row is spoken for: a `pending` row handed to the email queue, a `claimed` or
    # `sending` one held by its task. Past it, beat hands the row out again (pending, claimed) or
    # records it `unknown` (sending: it may have gone out).
    lease_until: Mapped[dt.datetime | None] = mapped_column(UTC)


class Action(Base):
    """What a person did, and why: resends, reallocations, purges, and the console's look-ups.
    Written, never updated or deleted by the service."""

    __tablename__ = "actions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(UTC, index=True)
    actor: Mapped[str] = mapped_column(Text)  # the operator's or account's name
    action: Mapped[str] = mapped_column(String(32))  # resend, purge, lookup, explain, preview, reallocate, ...
    session_id: Mapped[str | None] = mapped_column(String(64))
    run_id: Mapped[int | None] = mapped_column(Integer)
    target: Mapped[str | None] = mapped_column(Text)  # a FINESS, an order id, a run: never an address or a name
    reason: Mapped[str | None] = mapped_column(Text)
    address: Mapped[str | None] = mapped_column(String(64))  # where it came from (the console's client)
    detail: Mapped[dict | None] = mapped_column(JSON)


class User(Base):
    """An account of the console: `support` reads, `operator` also acts, `admin` also sees accounts and the log."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(Text)  # argon2id, with its parameters and salt
    created_at: Mapped[dt.datetime] = mapped_column(UTC)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)


class ConsoleSession(Base):
    """A signed-in browser: the cookie carries a random token, the table only its SHA-256, so a
    copy of the database opens no session. Deleted at sign-out; past `expires_at` it is dead."""

    __tablename__ = "console_sessions"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of the cookie's token
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTC)
    seen_at: Mapped[dt.datetime] = mapped_column(UTC)
    expires_at: Mapped[dt.datetime] = mapped_column(UTC, index=True)
    address: Mapped[str | None] = mapped_column(String(64))


class SignInThrottle(Base):
    """Refused sign-ins counted per key, shared by every console process: `pair` (an account from one
    address), `address` (every account from one address) and `account` (one account from addresses it
    never signed in from). A key past its free tries is locked for a while that doubles each time."""

    __tablename__ = "sign_in_throttle"
    scope: Mapped[str] = mapped_column(String(8), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), primary_key=True)  # "" for the `address` scope
    address: Mapped[str] = mapped_column(String(64), primary_key=True)  # "" for the `account` scope
    failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_at: Mapped[dt.datetime | None] = mapped_column(UTC)
    locked_until: Mapped[dt.datetime | None] = mapped_column(UTC)
    known_at: Mapped[dt.datetime | None] = mapped_column(UTC)  # `pair`: the account last signed in from there


class SelfSession(Base):
    """A signed-in browser of the self-service space: an officine (one-time link), a pharmacist or a
    professional (Pro Santé Connect). As for ConsoleSession, the table keeps only the token's SHA-256;
    `finesses` are the officines it may read, `rpps` the professional whose lines it may read."""

    __tablename__ = "self_sessions"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))  # officine, pharmacien, professionnel
    actor: Mapped[str] = mapped_column(String(64))  # as the journal names it: never an RPPS or a name
    finesses: Mapped[list] = mapped_column(JSON)
    rpps: Mapped[str | None] = mapped_column(String(11))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTC)
    seen_at: Mapped[dt.datetime] = mapped_column(UTC)
    expires_at: Mapped[dt.datetime] = mapped_column(UTC, index=True)
    address: Mapped[str | None] = mapped_column(String(64))


class SignInLink(Base):
    """A one-time sign-in link sent to an officine: the SHA-256 of its token, valid until
    `expires_at`, used once (`used_at`)."""

    __tablename__ = "sign_in_links"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    finess: Mapped[str] = mapped_column(String(9))
    created_at: Mapped[dt.datetime] = mapped_column(UTC)
    expires_at: Mapped[dt.datetime] = mapped_column(UTC, index=True)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTC)


class OidcStart(Base):
    """An OpenID Connect sign-in under way, keyed by the SHA-256 of the browser's cookie: the `state`,
    `nonce` and PKCE verifier its return must match. Deleted when it returns, used or not."""

    __tablename__ = "oidc_starts"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[str] = mapped_column(String(64))
    nonce: Mapped[str] = mapped_column(String(64))
    code_verifier: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[dt.datetime] = mapped_column(UTC, index=True)


class RunReport(Base):
    """A run's report.html, built once and served from here; `emails` holds the email counts it was
    drawn with, so a report drawn while emails were still going out is drawn again once they change."""

    __tablename__ = "run_reports"
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    emails: Mapped[str] = mapped_column(Text)
    html: Mapped[str] = mapped_column(Text)
    built_at: Mapped[dt.datetime] = mapped_column(UTC)
