"""The confirmation email as data (R9–R11): what one recipient is told of one run, line by line.

The letters service builds it from the stored run; the mail adapter renders it (text, HTML, the
attachments) and adds nothing but presentation. Codes (effector, injection, status, reason) are the
vocabulary's; names and depots are as the registers give them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

APPOINTMENT_DELAY = dt.timedelta(days=1)     # R9: "à partir du lendemain de la date prévisionnelle de livraison"
REDISTRIBUTION_DELAY = dt.timedelta(days=7)  # R10: "après un délai d'une semaine"


@dataclass(frozen=True)
class Gift:
    """R10, on the giving line: unclaimed vials redistributed to another professional."""

    vials: int
    rpps: str
    name: str | None = None  # as the register names them; None when the register does not list them
    kind: str = ""  # their effecteur kind (a Kind code), "" when unknown


@dataclass(frozen=True)
class Line:
    """One order line of the recipient, with its deliveries (date, or None for a pending remainder)."""

    order_id: str
    effector: str
    rpps: str
    professional: str  # the professional's display name, "" for pharmacien and infirmier lines
    vaccine: str
    vaccine_label: str
    injection: str
    requested: int
    allocated: int
    status: str
    reason: str
    deliveries: tuple[tuple[dt.date | None, int], ...]
    # CONTRACT's last column. Empty (the usual case): delivery date + 7 days on the officine's email (R10),
    # empty on a professional's. A value given here is written as is on every row of the line.
    redistribution_from: str = ""
    cap: int | None = None  # vials of the beneficiary's cap (R4, R5), said when the cap cut the line
    depots: tuple[str, ...] = ()  # who delivers each of `deliveries`, in order: "OCP Répartition (dépôt 69)"
    given: tuple[Gift, ...] = ()  # R10: this line's unclaimed vials redistributed to others
    # R10, on the receiving professional's email: the officine (name and FINESS) whose unclaimed vials of this
    # line are now theirs, to collect from `deliveries`' date. Such a line is not an order of theirs.
    received_from: str = ""


@dataclass(frozen=True)
class Confirmation:
    """One recipient's email of one run (R9), or its replacement (R11) when `replaces` is set."""

    session_id: str
    session_title: str
    reference: str
    run_version: int
    recipient_id: str  # FINESS or RPPS
    recipient_kind: str  # "officine" or a professional kind
    name: str
    email: str
    sender: str  # e.g. "Vaccination <noreply@vialflow.example.fr>"
    message_id: str  # stable, given by the caller: "<2021-06-14.1.010763615@vialflow>"
    lines: tuple[Line, ...]
    replaces: str | None = None  # Message-ID of the email this one cancels and replaces (R11)
    changes: tuple[str, ...] = ()  # short French sentences saying what changed, shown when replacing
    date: dt.datetime | None = None  # aware; a Date header only when given (no clock here)
