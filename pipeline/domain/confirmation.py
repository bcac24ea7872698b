"""The confirmation email as data (R9–R11): what one recipient is told of one run, line by line.

The letters service builds it from the stored run; the mail adapter renders it (text, HTML, the
attachments) and adds nothing but presentation. Codes (effector, injection, status, reason) are the
vocabulary's; names and depots are as the registers give them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from .vocabulary import Kind, Reason

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
    doses_per_vial: int = 0  # the vaccine's, from the session file; 0 when not known (doses are then not said)

    def doses(self, vials: int) -> int | None:
        """The doses in `vials` of this line's vaccine (vials × doses per vial); None when not known."""
        return int(vials) * self.doses_per_vial if self.doses_per_vial > 0 else None

    @property
    def named(self) -> bool:
        """A line for one professional (doctor, occupational doctor, midwife), not for the officine or its nurses."""
        return self.effector not in (Kind.PHARMACIEN, Kind.INFIRMIER)

    @property
    def beneficiary(self) -> str:
        """Whom the line is for, as the officine's email heads its block. A professional the register does
        not know (R2's `unknown_professional`) is said as such, never as an empty name or number."""
        kind = Kind.labelled(self.effector)
        if self.effector == Kind.PHARMACIEN:
            return f"Pour l'officine ({kind})"
        if self.effector == Kind.INFIRMIER:
            return f"Pour les {kind}"
        if self.professional:
            name = self.professional
            whom = f"le {name}" if name.startswith(("Dr ", "Pr ")) else name
            return f"Pour {whom} ({kind}, RPPS {self.rpps})" if self.rpps else f"Pour {whom} ({kind})"
        # No name: R2 refused the line (RPPS missing, not in the register, or of another kind), or the
        # register's names have been purged since.
        whom = "un professionnel non reconnu" if self.reason == Reason.UNKNOWN_PROFESSIONAL else "le professionnel"
        return f"Pour {whom} ({kind}, RPPS {self.rpps})" if self.rpps else f"Pour {whom} ({kind}, sans numéro RPPS)"

    @property
    def scheduled(self) -> bool:
        """Some vials of the line have a delivery date (R8)."""
        return any(day is not None and count > 0 for day, count in self.deliveries)


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

    @property
    def scheduled(self) -> bool:
        """Some vials of the email have a delivery date: only then does it carry a calendar (RFC 5545 wants
        at least one event in it)."""
        return any(line.scheduled for line in self.lines)

    def totals(self) -> tuple[Total, ...]:
        """The counts at the top of the email: its order lines and their vials requested, served, given a
        date and still waiting for one; and the vials redistributed to the recipient (R10), if any. Each
        count of vials with its doses, when every line counted knows its vaccine's doses per vial."""
        own = 0
        vials = [0, 0, 0, 0, 0]  # requested, served, dated, waiting, received
        doses = [0, 0, 0, 0, 0]
        known = [True, True]  # the doses of the own lines, of the received ones
        for line in self.lines:  # one pass: this runs for every email
            per = line.doses_per_vial
            if line.received_from:
                count = sum(n for _, n in line.deliveries)
                vials[4] += count
                doses[4] += count * per
                known[1] = known[1] and per > 0
                continue
            own += 1
            known[0] = known[0] and per > 0
            dated = sum(n for day, n in line.deliveries if day is not None)
            waiting = sum(n for day, n in line.deliveries if day is None)
            for index, count in enumerate((line.requested, line.allocated, dated, waiting)):
                vials[index] += count
                doses[index] += count * per
        said = [doses[k] if known[k == 4] and (own or k == 4) else None for k in range(5)]
        rows = [Total("Lignes de commande", own),
                Total("Flacons demandés", vials[0], said[0]), Total("Flacons servis", vials[1], said[1]),
                Total("dont livraison programmée", vials[2], said[2]),
                Total("dont en attente d'une date de livraison", vials[3], said[3])]
        if vials[4]:
            rows.append(Total("Flacons non récupérés qui vous sont redistribués", vials[4], said[4]))
        return tuple(rows)


@dataclass(frozen=True)
class Total:
    """One count at the top of the email: lines, or vials with their doses (None: not counted in doses)."""

    label: str
    count: int
    doses: int | None = None
