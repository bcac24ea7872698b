"""The confirmation email of R9–R11 as raw RFC 5322 bytes: pure, deterministic, built by hand for speed.

The standard `email` package costs about 4 ms per message (header folding); this module writes the
MIME tree directly and is checked against the standard library's parser in the tests.

One module, over 300 lines: the text and HTML bodies, `confirmation.csv` and `livraisons.ics` of one
email are all built from the same per-line views, computed once per message; the MIME plumbing
they share is in `mime.py`.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import re
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

import jinja2
from markupsafe import Markup, escape

from pipeline.domain.confirmation import APPOINTMENT_DELAY, REDISTRIBUTION_DELAY, Confirmation, Gift, Line
from pipeline.domain.french import doses, french_date, number, vials, vials_and_doses
from pipeline.domain.vocabulary import Delivery, Injection, Kind, Reason, Status

from . import mime, spreadsheet
from .mime import clean

CSV_COLUMNS = ("order_id", "effector", "rpps", "vaccine", "injection", "requested", "allocated", "status",
               "reason", "delivery_date", "vials", "earliest_appointment", "redistribution_from")
_CSV_HEADER = ",".join(CSV_COLUMNS) + "\r\n"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

def subject(confirmation: Confirmation) -> str:
    """`Confirmation de votre commande de vaccins – session du 14 juin 2021`, `Annule et remplace : …`."""
    return _subject(confirmation.session_id, confirmation.session_title, bool(confirmation.replaces))


def render(confirmation: Confirmation) -> bytes:
    """The full message (headers, text and HTML parts, confirmation.csv, confirmation.xlsx, and livraisons.ics
    when a delivery has a date), CRLF line ends."""
    # The ids on the sending domain, in the headers and in the text that quotes them alike.
    c = replace(confirmation, message_id=mime.message_id(confirmation.message_id, confirmation.sender),
                replaces=mime.message_id(confirmation.replaces, confirmation.sender) if confirmation.replaces else None)
    to = mime.mailbox(c.name, c.email)
    message_id, replaces = c.message_id, c.replaces
    officine = c.recipient_kind == "officine"
    lines = [_line_view(line, officine) for line in c.lines]
    view = _view(c, lines)
    text, html = _templates()[0].render(view), _templates()[1].render(view)
    # Deterministic boundaries; "=_" never occurs in base64 or quoted-printable, and an 8bit part that
    # happened to contain the token is sent in base64 instead (see _part).
    token = hashlib.blake2s(message_id.encode(), digest_size=12).hexdigest()
    mixed, alternative = f"=_mixed_{token}", f"=_alt_{token}"
    headers = [f"From: {mime.sender(c.sender)}", f"To: {to}", f"Subject: {mime.header_text(subject(c))}"]
    if c.date is not None:
        headers.append(f"Date: {mime.date(c.date)}")
    headers += [f"Message-ID: {message_id}", f"X-Vialflow-Session: {mime.header_text(clean(c.session_id))}",
                f"X-Vialflow-Run: {int(c.run_version)}",
                f"X-Vialflow-Recipient: {mime.header_text(clean(c.recipient_id))}"]
    if replaces:
        headers += [f"Supersedes: {replaces}", f"References: {replaces}"]
    headers += ["MIME-Version: 1.0", f'Content-Type: multipart/mixed; boundary="{mixed}"', "", ""]
    marker = token.encode()
    # No calendar without an event (RFC 5545 wants one component at least): the text says so instead.
    calendar = (mime.part(mixed, 'text/calendar; charset="utf-8"; method=PUBLISH', "livraisons.ics",
                          _calendar(c, lines), marker) if c.scheduled else b"")
    return b"".join((
        "\r\n".join(headers).encode("ascii"),
        f'--{mixed}\r\nContent-Type: multipart/alternative; boundary="{alternative}"\r\n\r\n'.encode(),
        mime.part(alternative, 'text/plain; charset="utf-8"', None, text.encode("utf-8"), marker),
        mime.part(alternative, 'text/html; charset="utf-8"', None, html.encode("utf-8"), marker),
        f"--{alternative}--\r\n".encode(),
        mime.part(mixed, 'text/csv; charset="utf-8"', "confirmation.csv", confirmation_csv(c), marker),
        mime.part(mixed, XLSX, "confirmation.xlsx", confirmation_xlsx(c), marker, binary=True),
        calendar,
        f"--{mixed}--\r\n".encode(),
    ))


def bodies(confirmation: Confirmation) -> tuple[str, str]:
    """The text and the HTML body of the message, CRLF line ends (a preview, or another way to send it)."""
    officine = confirmation.recipient_kind == "officine"
    view = _view(confirmation, [_line_view(line, officine) for line in confirmation.lines])
    return _templates()[0].render(view), _templates()[1].render(view)


def confirmation_csv(confirmation: Confirmation) -> bytes:
    """One row per line and delivery (CONTRACT.md `mail/`); a line without delivery gets one row."""
    officine = confirmation.recipient_kind == "officine"
    rows = [_CSV_HEADER]
    for line in confirmation.lines:
        head = (f"{line.order_id},{line.effector},{line.rpps},{line.vaccine},{line.injection},"
                f"{int(line.requested)},{int(line.allocated)},{line.status},{line.reason},")
        if '"' in head or "\r" in head or "\n" in head or head.count(",") != 9:  # rare: clean, let csv quote
            head = _csv_row((*(clean(text) for text in (line.order_id, line.effector, line.rpps, line.vaccine,
                                                         line.injection)),
                             int(line.requested), int(line.allocated), clean(line.status), clean(line.reason), ""))[:-2]
        given = _csv_row((clean(line.redistribution_from),))[:-2] if line.redistribution_from else ""
        if not line.deliveries:
            rows.append(f"{head},,,{given}\r\n")
        for day, count in line.deliveries:
            if day is None:
                rows.append(f"{head},{int(count)},,{given}\r\n")
            else:
                rows.append(f"{head}{day.isoformat()},{int(count)},{(day + APPOINTMENT_DELAY).isoformat()},"
                            f"{given or ((day + REDISTRIBUTION_DELAY).isoformat() if officine else '')}\r\n")
    return "".join(rows).encode("utf-8")


def confirmation_xlsx(confirmation: Confirmation) -> bytes:
    """confirmation.xlsx: the rows of confirmation.csv for people, in French (spreadsheet.COLUMNS): the same
    requested and served vials and the same status as the text says, the delivery date column holding
    dates only (a pending remainder said in the delivery's status column), the doses beside the vials."""
    officine = confirmation.recipient_kind == "officine"
    rows = []
    for line in confirmation.lines:
        received = bool(line.received_from)
        if received:
            given = f"Flacons non récupérés à l'officine {clean(line.received_from)}, qui vous sont redistribués"
        else:
            given = " ".join(_given(gift) for gift in line.given)
        reason = "" if line.reason in ("ok", "") else (
            f"plafond de {vials(line.cap)} atteint" if line.reason == "cap" and line.cap is not None
            else _label(Reason, line.reason))
        head = (clean(line.order_id), _label(Kind, line.effector), clean(line.professional),
                clean(line.rpps), clean(line.vaccine_label or line.vaccine),
                _label(Injection, line.injection), int(line.requested), int(line.allocated),
                _label(Status, line.status, long=True), reason)
        asked, served = line.doses(line.requested), line.doses(line.allocated)
        for index, (day, count) in enumerate(line.deliveries or ((None, None),)):
            depot = clean(line.depots[index]) if index < len(line.depots) else ""
            if count is None:  # a line with no delivery: refused
                rows.append((*head, None, None, depot, None, None, given, None, asked, served, None))
            elif day is None:
                rows.append((*head, None, int(count), depot, None, None, given, Delivery.PENDING.long, asked,
                             served, line.doses(count)))
            else:
                rows.append((*head, day, int(count), depot, day + APPOINTMENT_DELAY,
                             day + REDISTRIBUTION_DELAY if officine and not received else None, given,
                             Delivery.SCHEDULED.long, asked, served, line.doses(count)))
    when = confirmation.date.astimezone(dt.timezone.utc).replace(tzinfo=None) if confirmation.date else _EPOCH
    return spreadsheet.workbook(rows, when)


_EPOCH = dt.datetime(2021, 1, 1)  # the file's creation stamp when the message has no Date


def calendar(confirmation: Confirmation) -> bytes:
    """livraisons.ics: one all-day VEVENT per scheduled delivery date."""
    officine = confirmation.recipient_kind == "officine"
    return _calendar(confirmation, [_line_view(line, officine) for line in confirmation.lines])


# -- the view handed to both templates (dicts, read with `x["key"]`: Jinja's fastest lookup) -----------

def _view(c: Confirmation, lines: list[dict]) -> dict:
    groups: dict[tuple[str, str], dict] = {}
    for line in lines:
        group = groups.get(line["group"])
        if group is None:
            group = groups[line["group"]] = {"title": line["group_title"], "lines": []}
        group["lines"].append(line)
    order = sorted(groups, key=lambda key: _GROUP_RANK.get(key[0], 1))  # stable: first seen first within a rank
    # A group's rows are joined here rather than looped over in the templates: a template loop cost more
    # than the rest of the body (its context, an escape per value); the cells and deliveries are Markup.
    for group in groups.values():
        rows = group.pop("lines")
        group["text"] = "".join([f"* {line['label']} (commande {line['order_id']})\r\n{line['text']}\r\n"
                                 for line in rows])
        group["html"] = Markup("".join([f"<tr>\r\n<td>{escape(line['order_id'])}</td>\r\n{line['cells']}"
                                        f"<td>{line['deliveries']}</td>\r\n</tr>\r\n" for line in rows]))
    return {
        "officine": c.recipient_kind == "officine", "name": clean(c.name), "subject": subject(c),
        "title": clean(c.session_title), "reference": clean(c.reference),
        "kind": _label(Kind, c.recipient_kind),
        "replaces": clean(c.replaces) if c.replaces else "", "changes": [clean(text) for text in c.changes],
        "groups": [groups[key] for key in order],
        "totals": [(total.label, number(total.count) + (f" ({doses(total.doses)})" if total.doses and total.count
                                                         else "")) for total in c.totals()],
        "any_pending": any(day is None for line in c.lines for day, _ in line.deliveries),
        "calendar": c.scheduled,
        "footer": f"Session {clean(c.session_id)} · version {int(c.run_version)} · {clean(c.message_id)}",
    }


_GROUP_RANK = {"pharmacien": 0, "infirmier": 2, "received": 3}


def _line_view(line: Line, officine: bool) -> dict:
    """One line as the templates and the calendar show it, built from fragments rendered once per value."""
    if line.received_from:
        return _received_view(line)
    vaccine, injection, text, cells, deliveries = _shown(
        line.vaccine_label or line.vaccine, line.injection, line.requested, line.allocated, line.status,
        line.reason, line.deliveries, officine, _cap_reason(line) if line.reason == "cap" else None,
        tuple(clean(depot) for depot in line.depots), line.doses_per_vial)
    if line.given:  # R10: rare, so said here rather than cached
        said = [_given(gift) for gift in line.given]
        text += "".join(f"  - {sentence}\r\n" for sentence in said)
        deliveries = Markup("").join([deliveries, *(Markup('<p style="margin: 0 0 4px 0;"><strong>%s</strong></p>')
                                                   % sentence for sentence in said)])
    named = line.named
    who = clean(line.professional) or (f"RPPS {clean(line.rpps)}" if line.rpps else _label(Kind, line.effector))
    return {
        "order_id": clean(line.order_id), "label": f"{vaccine}, {injection}", "text": text, "cells": cells,
        "deliveries": deliveries, "group": (line.effector, line.rpps if named else ""),
        "group_title": clean(line.beneficiary) if officine else "",
        "calendar_title": f"{vaccine} {injection}" + (
            "" if not officine or line.effector == "pharmacien" else
            f", {Kind.INFIRMIER.short}" if line.effector == Kind.INFIRMIER else f", {who}"),
        "dates": line.deliveries, "per_vial": line.doses_per_vial,
    }


def _received_view(line: Line) -> dict:
    """R10, on the receiving professional's email: unclaimed vials of another line, now theirs."""
    vaccine, injection = clean(line.vaccine_label or line.vaccine), _label(Injection, line.injection)
    origin = clean(line.received_from)
    count = sum(n for _, n in line.deliveries)
    said = (f"{_agreed(count, 'non récupéré')} à l'officine {origin} "
            f"{'vous est redistribué' if count < 2 else 'vous sont redistribués'}.")
    pickups = [(french_date(day), french_date(day + APPOINTMENT_DELAY)) for day, _ in line.deliveries
               if day is not None]
    # The same requested and served vials, and the same status, as confirmation.csv and .xlsx say of it.
    text, cells = _outcome(vaccine, injection, int(line.requested), int(line.allocated), line.status, "", None,
                           line.doses_per_vial, said)
    text += "".join(f"  - À retirer à l'officine à partir du {day}. Rendez-vous à partir du {appointment}.\r\n"
                    for day, appointment in pickups)
    deliveries = Markup("").join(Markup('<p style="margin: 0 0 4px 0;">À retirer à l\'officine à partir du %s<br>'
                                        'Rendez-vous à partir du %s</p>') % pickup for pickup in pickups)
    return {"order_id": clean(line.order_id), "label": f"{vaccine}, {injection}", "text": text,
            "cells": Markup(cells), "deliveries": deliveries or Markup("&mdash;"), "group": ("received", ""),
            "group_title": "Flacons non récupérés qui vous sont redistribués",
            "calendar_title": f"{vaccine} {injection}, redistribution de l'officine {origin}",
            "dates": line.deliveries, "per_vial": line.doses_per_vial}


def _agreed(count: int, adjective: str) -> str:
    """`1 flacon non récupéré`, `3 flacons non récupérés`: the adjective agrees with the count."""
    return f"{vials(count)} {adjective}{'s' if not -2 < count < 2 else ''}"


def _given(gift: Gift) -> str:
    """R10, on the giving line: `3 flacons non récupérés redistribués au Dr Julien Girard (médecin, RPPS …).`"""
    kind = Kind.labelled(gift.kind) if Kind.of(gift.kind) else "professionnel de santé"
    who = clean(f"{gift.name} ({kind}, RPPS {gift.rpps})" if gift.name is not None else f"RPPS {gift.rpps}")
    to = f"au {who}" if who.startswith(("Dr ", "Pr ")) else f"à {who}"
    count = gift.vials
    return f"{_agreed(count, 'non récupéré')} {'redistribué' if -2 < count < 2 else 'redistribués'} {to}."


@lru_cache(maxsize=16384)
def _shown(vaccine: str, injection: str, requested: int, allocated: int, status: str, reason: str,
           deliveries: tuple, officine: bool, said: str | None = None,
           depots: tuple = (), doses_per_vial: int = 0) -> tuple[str, str, str, str, Markup]:
    """What a line shows apart from its ids: (vaccine, injection, text, HTML cells, HTML deliveries). The
    same few combinations recur from line to line. `said`, when given, is the reason in full; `depots`,
    who delivers each delivery; `doses_per_vial`, the doses said beside each count of vials (0: none)."""
    vaccine = clean(vaccine)
    injection = _label(Injection, injection)
    shown_reason = reason if status != "served" or reason not in ("ok", "") else ""
    outcome = _outcome(vaccine, injection, requested, allocated, status, shown_reason, said, doses_per_vial)
    parts = [_delivery(day, count, officine, depots[index] if index < len(depots) else "", doses_per_vial)
             for index, (day, count) in enumerate(deliveries)]
    return (vaccine, injection, outcome[0] + "".join([text for text, _ in parts]), outcome[1],
            Markup("".join([html for _, html in parts]) or "&mdash;"))


def _cap_reason(line: Line) -> str | None:
    """R4, R5: the cap that cut the line, in vials, as the pharmacist will check it."""
    if line.cap is None:
        return None
    whose = ("pour l'officine" if line.effector == Kind.PHARMACIEN else
             f"pour les {Kind.INFIRMIER.long}" if line.effector == Kind.INFIRMIER else
             f"par {_label(Kind, line.effector)}")
    return (f"Plafond de {vials(line.cap)} {whose} atteint pour ce vaccin et cette injection, compte tenu "
            "des lignes déjà commandées.")


def _label(vocabulary, code: str, long: bool = False) -> str:
    """A code's label from the vocabulary; a code it does not know, as written (cleaned)."""
    member = vocabulary.of(code)
    return clean(code) if member is None else member.long if long else member.short


# A line's outcome and each delivery are rendered once per distinct value by the `parts` macros, as
# (text, HTML): the same few vaccines, quantities, reasons and (date, vials) recur in every email.

@lru_cache(maxsize=8192)
def _outcome(vaccine: str, injection: str, requested: int, allocated: int, status: str, reason: str,
             said: str | None = None, doses_per_vial: int = 0, note: str = "") -> tuple[str, str]:
    """`note`: a sentence said under the outcome that is not a reason (R10: vials redistributed to the reader)."""
    cause = Reason.of(reason)
    values = (vaccine, injection, vials_and_doses(requested, doses_per_vial),
              vials_and_doses(allocated, doses_per_vial), _label(Status, status, long=True),
              (said or (cause.sentence if cause not in (None, Reason.OK) else clean(reason))) if reason else "", note)
    return tuple(parts.outcome(*values) for parts in _templates()[2:])  # type: ignore[return-value]


@lru_cache(maxsize=8192)
def _delivery(day: dt.date | None, count: int, officine: bool, depot: str = "",
              doses_per_vial: int = 0) -> tuple[str, str]:
    if day is None:
        values = ("", vials_and_doses(count, doses_per_vial), "", "", depot, Delivery.PENDING.long)
    else:
        values = (french_date(day), vials_and_doses(count, doses_per_vial), french_date(day + APPOINTMENT_DELAY),
                  french_date(day + REDISTRIBUTION_DELAY) if officine else "", depot, "")
    return tuple(parts.delivery(*values) for parts in _templates()[2:])  # type: ignore[return-value]


@lru_cache(maxsize=256)
def _subject(session_id: str, title: str, replacing: bool) -> str:
    match = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})", session_id)
    if match:
        session = f"session du {french_date(dt.date(*map(int, match.groups()))).split(' ', 1)[1]}"
    else:
        session = f"session « {title or session_id} »"
    text = clean(f"Confirmation de votre commande de vaccins – {session}")
    return f"Annule et remplace : {text}" if replacing else text


def _calendar(c: Confirmation, lines: list[dict]) -> bytes:
    """One all-day VEVENT per scheduled delivery date. The UID names the recipient's delivery day, not
    the message, and SEQUENCE is the run version: a replacement (R11) updates the same events."""
    days: dict[dt.date, list[str]] = {}
    totals: dict[dt.date, int] = {}
    for line in lines:
        for day, count in line["dates"]:
            if day is not None and count > 0:
                said = vials_and_doses(count, line["per_vial"])
                days.setdefault(day, []).append(f"{line['calendar_title']} : {said} (commande {line['order_id']})")
                totals[day] = totals.get(day, 0) + count
    uid = hashlib.blake2s(f"{c.session_id}|{c.recipient_id}".encode(), digest_size=10).hexdigest()
    stamp = _utc(c.date) if c.date is not None else None
    out = [_ICS_HEAD]
    for day in sorted(days):
        start, end = _ics_date(day), _ics_date(day + _ONE_DAY)
        described = "\n".join(days[day]) + f"\nRendez-vous à partir du {french_date(day + APPOINTMENT_DELAY)}."
        out.append(f"BEGIN:VEVENT\r\nUID:{uid}-{start}@vialflow\r\nSEQUENCE:{int(c.run_version)}\r\n"
                   f"DTSTAMP:{stamp or start + 'T000000Z'}\r\nDTSTART;VALUE=DATE:{start}\r\n"
                   f"DTEND;VALUE=DATE:{end}\r\nSUMMARY:Livraison de vaccins : {vials(totals[day])}\r\n"
                   f"{_ics_text('DESCRIPTION', described)}TRANSP:TRANSPARENT\r\nEND:VEVENT\r\n")
    out.append("END:VCALENDAR\r\n")
    return "".join(out).encode("utf-8")


_ICS_HEAD = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//vialflow//confirmation//FR\r\nCALSCALE:GREGORIAN\r\n"
             "METHOD:PUBLISH\r\n")
_ONE_DAY = dt.timedelta(days=1)


def _utc(when: dt.datetime) -> str:
    if when.tzinfo is None:
        raise ValueError("the Date of a message must be an aware datetime")
    return when.astimezone(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def _ics_text(name: str, text: str) -> str:
    """A TEXT property, escaped and folded at 75 octets, never inside a UTF-8 sequence (RFC 5545 3.1, 3.3.11)."""
    line = name + ":" + text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")
    data = line.encode("utf-8")
    if len(data) <= 75:
        return line + "\r\n"
    pieces, start, width = [], 0, 75
    while start < len(data):
        end = min(start + width, len(data))
        while end < len(data) and data[end] & 0xC0 == 0x80:
            end -= 1
        pieces.append(data[start:end].decode("utf-8"))
        start, width = end, 74
    return "\r\n ".join(pieces) + "\r\n"


@lru_cache(maxsize=4096)
def _ics_date(day: dt.date) -> str:
    return f"{day.year:04d}{day.month:02d}{day.day:02d}"


def _csv_row(fields: tuple) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow(fields)
    return out.getvalue()


@lru_cache(maxsize=1)
def _templates() -> tuple:
    """The text and HTML templates and their `parts` macros, loaded and compiled once per process."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).with_name("templates")),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=False),
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True, newline_sequence="\r\n",
        undefined=jinja2.StrictUndefined,
    )
    return (env.get_template("confirmation.txt"), env.get_template("confirmation.html"),
            env.get_template("parts.txt").module, env.get_template("parts.html").module)
