"""The confirmation email of R9–R11 as raw RFC 5322 bytes: pure, deterministic, built by hand for speed.

The standard `email` package costs about 4 ms per message (header folding); this module writes the
MIME tree directly and is checked against the standard library's parser in the tests.
"""

from __future__ import annotations

import base64
import binascii
import csv
import datetime as dt
import hashlib
import io
import re
from dataclasses import dataclass
from email.utils import format_datetime
from functools import lru_cache
from pathlib import Path

import jinja2

DAYS = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")
MONTHS = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre",
          "octobre", "novembre", "décembre")
APPOINTMENT_DELAY = dt.timedelta(days=1)     # "à partir du lendemain de la date prévisionnelle de livraison"
REDISTRIBUTION_DELAY = dt.timedelta(days=7)  # R10: "après un délai d'une semaine"
PENDING = "date communiquée ultérieurement"
CSV_COLUMNS = ("order_id", "effector", "rpps", "vaccine", "injection", "requested", "allocated", "status",
               "reason", "delivery_date", "vials", "earliest_appointment", "redistribution_from")
_CSV_HEADER = ",".join(CSV_COLUMNS) + "\r\n"

KIND_LABELS = {"pharmacien": "pharmacien", "medecin": "médecin", "medecin_travail": "médecin du travail",
               "sage_femme": "sage-femme", "infirmier": "infirmiers rattachés"}
INJECTION_LABELS = {"first": "1ère injection", "second": "2nde injection"}
STATUS_LABELS = {"served": "servie en totalité", "partial": "servie en partie", "refused": "refusée"}
REASONS = {
    "cap": "Plafond par professionnel atteint : la quantité demandée dépasse le nombre de flacons ouverts "
           "à la commande pour ce vaccin et cette injection, compte tenu des lignes déjà commandées.",
    "unit": "Arrondi à la boîte entière : ce vaccin n'est livré que par boîtes complètes, la quantité a été "
            "ramenée au nombre de boîtes entières.",
    "supply": "Volume disponible épuisé (premier arrivé, premier servi) : les commandes sont servies dans "
              "l'ordre de leur saisie, dans la limite des doses disponibles.",
    "eligibility": "Ce vaccin n'est pas ouvert à la commande pour ce type d'effecteur ou pour cette "
                   "injection lors de cette session.",
    "window": "La commande a été saisie en dehors de la période d'ouverture du portail de commande.",
    "zone": "L'officine se situe en dehors de la zone géographique concernée par cette session.",
    "not_attached": "Le professionnel n'est pas rattaché à l'officine qui a passé la commande : il doit "
                    "commander par son officine de rattachement.",
    "unknown_pharmacy": "L'officine n'a pas été reconnue (numéro FINESS inconnu).",
    "unknown_professional": "Le professionnel n'a pas été reconnu : numéro RPPS absent, inconnu ou "
                            "enregistré pour un autre type d'effecteur.",
    "cancelled": "La commande a été annulée lors d'une réattribution des vaccins.",
}

# C0, DEL, C1 and the Unicode line/paragraph separators: none may reach a header or a body line.
_CONTROLS = {code: " " for code in (*range(0x20), *range(0x7F, 0xA0), 0x2028, 0x2029)}
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_ADDRESS = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@{_LABEL}(?:\.{_LABEL})*")
_MESSAGE_ID = re.compile(r"<[!-;=?-~]+@[!-;=?-~]+>")  # printable ASCII without < > and one @
_PHRASE = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~ -]*")
_ATOM_WORD = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+")
_TEXT_WORD = re.compile(r"[!-~]+")
_MAILBOX = re.compile(r"\s*(.*?)\s*<([^<>]*)>\s*")
_WORD_BYTES = 45  # 60 base64 characters: an encoded-word of at most 75 characters (RFC 2047)


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


@lru_cache(maxsize=4096)
def french_date(day: dt.date) -> str:
    """`vendredi 25 juin 2021`, `jeudi 1er juillet 2021`, whatever the process locale."""
    number = "1er" if day.day == 1 else str(day.day)
    return f"{DAYS[day.weekday()]} {number} {MONTHS[day.month - 1]} {day.year}"


def vials(count: int) -> str:
    return f"{count} flacon" if -2 < count < 2 else f"{count} flacons"


def clean(text: str) -> str:
    """The text on one line: control characters (and line or paragraph separators) become spaces, runs of
    spaces one space, no space at either end."""
    text = str(text)
    if text.isprintable() and "  " not in text and text[:1] != " " and text[-1:] != " ":
        return text
    return " ".join(text.translate(_CONTROLS).split())


def check_address(address: str) -> str:
    """One ASCII addr-spec (`local@domain`), or ValueError: no display name, comma, bracket or space."""
    if (not isinstance(address, str) or len(address) > 254 or not _ADDRESS.fullmatch(address)
            or len(address.partition("@")[0]) > 64):
        raise ValueError(f"invalid email address {address!r}")
    return address


def subject(confirmation: Confirmation) -> str:
    match = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})", confirmation.session_id)
    if match:
        session = f"session du {_day_month_year(dt.date(*map(int, match.groups())))}"
    else:
        session = f"session « {confirmation.session_title or confirmation.session_id} »"
    text = clean(f"Confirmation de votre commande de vaccins – {session}")
    return f"Annule et remplace : {text}" if confirmation.replaces else text


def render(confirmation: Confirmation) -> bytes:
    """The full message (headers, text and HTML parts, confirmation.csv, livraisons.ics), CRLF line ends."""
    c = confirmation
    to = mailbox(c.name, c.email)
    message_id = _message_id(c.message_id)
    replaces = _message_id(c.replaces) if c.replaces else None
    view = _view(c)
    token = hashlib.blake2s(message_id.encode(), digest_size=12).hexdigest()
    # "=_" never occurs in base64 or quoted-printable, nor in the templates' 8bit text
    mixed, alternative = f"=_mixed_{token}", f"=_alt_{token}"
    headers = [
        f"From: {_sender(c.sender)}",
        f"To: {to}",
        f"Subject: {_header_text(subject(c))}",
    ]
    if c.date is not None:
        headers.append(f"Date: {_date(c.date)}")
    headers += [
        f"Message-ID: {message_id}",
        f"X-Vialflow-Session: {_header_text(clean(c.session_id))}",
        f"X-Vialflow-Run: {int(c.run_version)}",
        f"X-Vialflow-Recipient: {_header_text(clean(c.recipient_id))}",
    ]
    if replaces:
        headers += [f"Supersedes: {replaces}", f"References: {replaces}"]
    headers += ["MIME-Version: 1.0", f'Content-Type: multipart/mixed; boundary="{mixed}"']
    head = "\r\n".join(headers).encode("ascii")
    return b"".join((
        head, b"\r\n\r\n",
        f'--{mixed}\r\nContent-Type: multipart/alternative; boundary="{alternative}"\r\n\r\n'.encode(),
        _text_part(alternative, "text/plain", _templates()[0].render(view)),
        _text_part(alternative, "text/html", _templates()[1].render(view)),
        f"--{alternative}--\r\n".encode(),
        _attachment(mixed, 'text/csv; charset="utf-8"', "confirmation.csv", confirmation_csv(c)),
        _attachment(mixed, 'text/calendar; charset="utf-8"; method=PUBLISH', "livraisons.ics", calendar(c)),
        f"--{mixed}--\r\n".encode(),
    ))


def confirmation_csv(confirmation: Confirmation) -> bytes:
    """One row per line and delivery (CONTRACT.md `mail/`); a line without delivery gets one row."""
    officine = confirmation.recipient_kind == "officine"
    rows = [_CSV_HEADER]
    for line in confirmation.lines:
        head = (f"{line.order_id},{line.effector},{line.rpps},{line.vaccine},{line.injection},"
                f"{int(line.requested)},{int(line.allocated)},{line.status},{line.reason},")
        if '"' in head or "\r" in head or "\n" in head or head.count(",") != 9:  # rare: let csv quote
            head = _csv_row((line.order_id, line.effector, line.rpps, line.vaccine, line.injection,
                             line.requested, line.allocated, line.status, line.reason, "")).rstrip("\r\n")
        given = _csv_row((clean(line.redistribution_from),)).rstrip("\r\n") if line.redistribution_from else ""
        if not line.deliveries:
            rows.append(f"{head},,,{given}\r\n")
        for day, count in line.deliveries:
            if day is None:
                rows.append(f"{head},{int(count)},,{given}\r\n")
            else:
                rows.append(f"{head}{day.isoformat()},{int(count)},{(day + APPOINTMENT_DELAY).isoformat()},"
                            f"{given or ((day + REDISTRIBUTION_DELAY).isoformat() if officine else '')}\r\n")
    return "".join(rows).encode("utf-8")


def calendar(confirmation: Confirmation) -> bytes:
    """One all-day VEVENT per scheduled delivery date. The UID names the recipient's delivery day, not
    the message, and SEQUENCE is the run version: a replacement (R11) updates the same event."""
    c = confirmation
    officine = c.recipient_kind == "officine"
    days: dict[dt.date, list[str]] = {}
    totals: dict[dt.date, int] = {}
    for line in c.lines:
        title = None
        for day, count in line.deliveries:
            if day is None or count <= 0:
                continue
            title = title or _line_title(line, officine)
            days.setdefault(day, []).append(f"{title} : {vials(count)} (commande {clean(line.order_id)})")
            totals[day] = totals.get(day, 0) + count
    stamp = _utc(c.date) if c.date is not None else None
    out = ["BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//vialflow//confirmation//FR\r\nCALSCALE:GREGORIAN\r\n"
           "METHOD:PUBLISH\r\n"]
    for day in sorted(days):
        uid = hashlib.blake2s(f"{c.session_id}|{c.recipient_id}|{day}".encode(), digest_size=10).hexdigest()
        start, end = _ics_date(day), _ics_date(day + dt.timedelta(days=1))
        described = "\n".join(days[day]) + f"\nRendez-vous à partir du {french_date(day + APPOINTMENT_DELAY)}."
        out.append(f"BEGIN:VEVENT\r\nUID:{uid}@vialflow\r\nSEQUENCE:{int(c.run_version)}\r\n"
                   f"DTSTAMP:{stamp or start + 'T000000Z'}\r\nDTSTART;VALUE=DATE:{start}\r\n"
                   f"DTEND;VALUE=DATE:{end}\r\n{_ics_text('SUMMARY', f'Livraison de vaccins : {vials(totals[day])}')}"
                   f"{_ics_text('DESCRIPTION', described)}TRANSP:TRANSPARENT\r\nEND:VEVENT\r\n")
    out.append("END:VCALENDAR\r\n")
    return "".join(out).encode("utf-8")


def mailbox(name: str, address: str) -> str:
    """`Display Name <local@domain>` for a header: the name cleaned and quoted or RFC 2047-encoded."""
    address = check_address(address)
    name = clean(name)[:200].rstrip()
    if not name:
        return address
    phrase = _phrase(name)
    last = len(phrase.rsplit("\n", 1)[-1]) if "\n" in phrase else 6 + len(phrase)  # after "From: "
    return f"{phrase}{' ' if last + len(address) + 3 <= 78 else chr(13) + chr(10) + ' '}<{address}>"


# -- the view handed to both templates (dicts, read with `x["key"]`: Jinja's fastest lookup) -----------

def _view(c: Confirmation) -> dict:
    officine = c.recipient_kind == "officine"
    groups: dict[tuple[str, str], dict] = {}
    for line in c.lines:
        key = (line.effector, "") if line.effector in ("pharmacien", "infirmier") else (line.effector, line.rpps)
        group = groups.get(key)
        if group is None:
            group = groups[key] = {"title": _group_title(line) if officine else "", "lines": []}
        group["lines"].append(_line_view(line, officine))
    order = sorted(groups, key=lambda key: _GROUP_RANK.get(key[0], 1))  # stable: first appearance within a rank
    session, message_id = clean(c.session_id), clean(c.message_id)
    return {
        "officine": officine, "name": clean(c.name), "subject": subject(c),
        "title": clean(c.session_title), "reference": clean(c.reference),
        "kind": KIND_LABELS.get(c.recipient_kind) or clean(c.recipient_kind),
        "replaces": clean(c.replaces) if c.replaces else "", "changes": [clean(text) for text in c.changes],
        "groups": [groups[key] for key in order],
        "any_pending": any(day is None for line in c.lines for day, _ in line.deliveries),
        "footer": f"Session {session} · version {int(c.run_version)} · {message_id}",
    }


_GROUP_RANK = {"pharmacien": 0, "infirmier": 2}


def _group_title(line: Line) -> str:
    if line.effector == "pharmacien":
        return "Pour l'officine (pharmacien)"
    if line.effector == "infirmier":
        return "Pour les infirmiers rattachés"
    name = clean(line.professional) or "Professionnel"
    return f"Pour {name} ({KIND_LABELS.get(line.effector) or clean(line.effector)}, RPPS {clean(line.rpps)})"


def _line_view(line: Line, officine: bool) -> dict:
    vaccine = clean(line.vaccine_label or line.vaccine)
    injection = INJECTION_LABELS.get(line.injection) or clean(line.injection)
    shortfall = line.status != "served" or line.reason not in ("ok", "")
    return {
        "order_id": clean(line.order_id), "vaccine": vaccine, "injection": injection,
        "label": f"{vaccine}, {injection}",
        "outcome": _outcome(line.requested, line.allocated, line.status, line.reason if shortfall else ""),
        "deliveries": [_delivery(day, count, officine) for day, count in line.deliveries],
    }


# A line's outcome and each delivery are rendered once per distinct value by the `parts` macros, as
# (text, HTML): the same few (date, vials) and (requested, allocated, reason) recur in every email.

@lru_cache(maxsize=4096)
def _outcome(requested: int, allocated: int, status: str, reason: str) -> tuple[str, str]:
    values = (vials(requested), allocated, STATUS_LABELS.get(status) or clean(status),
              (REASONS.get(reason) or clean(reason)) if reason else "")
    return tuple(parts.outcome(*values) for parts in _templates()[2:])  # type: ignore[return-value]


@lru_cache(maxsize=4096)
def _delivery(day: dt.date | None, count: int, officine: bool) -> tuple[str, str]:
    if day is None:
        values = ("", vials(count), "", "")
    else:
        values = (french_date(day), vials(count), french_date(day + APPOINTMENT_DELAY),
                  french_date(day + REDISTRIBUTION_DELAY) if officine else "")
    return tuple(parts.delivery(*values) for parts in _templates()[2:])  # type: ignore[return-value]


def _line_title(line: Line, officine: bool) -> str:
    label = f"{clean(line.vaccine_label or line.vaccine)} {INJECTION_LABELS.get(line.injection) or clean(line.injection)}"
    if not officine or line.effector == "pharmacien":
        return label
    if line.effector == "infirmier":
        return f"{label}, infirmiers rattachés"
    return f"{label}, {clean(line.professional) or 'RPPS ' + clean(line.rpps)}"


def _day_month_year(day: dt.date) -> str:
    return french_date(day).split(" ", 1)[1]


# -- MIME by hand --------------------------------------------------------------------------------------

def _text_part(boundary: str, content_type: str, text: str) -> bytes:
    """A UTF-8 text part sent as 8bit (readable and greppable in the .eml, nothing to encode; the sender
    announces BODY=8BITMIME), or quoted-printable when a line would pass SMTP's 998-octet limit."""
    body = text.encode("utf-8")
    if max(map(len, body.split(b"\r\n"))) <= 998:
        encoding = "7bit" if body.isascii() else "8bit"
    else:
        body, encoding = binascii.b2a_qp(body, istext=True), "quoted-printable"
    if not body.endswith(b"\r\n"):
        body += b"\r\n"
    return b"".join((f'--{boundary}\r\nContent-Type: {content_type}; charset="utf-8"\r\n'
                     f"Content-Transfer-Encoding: {encoding}\r\n\r\n".encode(), body))


def _attachment(boundary: str, content_type: str, filename: str, data: bytes) -> bytes:
    encoded = binascii.b2a_base64(data, newline=False)
    lines = [encoded[start:start + 76] for start in range(0, len(encoded), 76)]  # RFC 2045 line length
    return b"".join((f'--{boundary}\r\nContent-Type: {content_type}; name="{filename}"\r\n'
                     f'Content-Disposition: attachment; filename="{filename}"\r\n'
                     "Content-Transfer-Encoding: base64\r\n\r\n".encode(), b"\r\n".join(lines), b"\r\n"))


@lru_cache(maxsize=1024)
def _header_text(text: str) -> str:
    """Unstructured header text: as is when plain ASCII, else folded RFC 2047 encoded-words."""
    text = clean(text)
    if text.isascii() and len(text) < 900 and "=?" not in text:
        return text
    return _words(text, _TEXT_WORD)


@lru_cache(maxsize=1024)
def _phrase(name: str) -> str:
    """A display name: as is when made of atoms, else a quoted-string (ASCII) or, around the words that
    need it, RFC 2047 encoded-words (the plain words stay readable)."""
    if name.isascii() and "=?" not in name:  # "=?" would read as an encoded-word, even quoted
        if _PHRASE.fullmatch(name):
            return name
        return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return _words(name, _ATOM_WORD)


def _words(text: str, plain: re.Pattern) -> str:
    """The text's words as they are where `plain` allows, else as RFC 2047 encoded-words, folded."""
    pieces: list[str] = []
    run: list[str] = []  # consecutive words to encode together, so that their spaces survive
    for word in text.split(" "):
        if plain.fullmatch(word) and "=?" not in word:
            if run:
                pieces.append(_encoded_words(" ".join(run)))
                run = []
            pieces.append(word)
        else:
            run.append(word)
    if run:
        pieces.append(_encoded_words(" ".join(run)))
    return _fold_words(pieces)


def _fold_words(pieces: list[str]) -> str:
    """Pieces joined by spaces, or by a fold (CRLF, space) where a line would pass 70 characters."""
    out = [pieces[0]]
    width = len(pieces[0].rsplit("\n", 1)[-1]) if "\n" in pieces[0] else 6 + len(pieces[0])  # after "From: "
    for piece in pieces[1:]:
        if width + 1 + len(piece.split("\r\n", 1)[0]) > 70:
            out.append("\r\n ")
            width = 1
        else:
            out.append(" ")
            width += 1
        out.append(piece)
        width = width + len(piece) if "\n" not in piece else len(piece.rsplit("\n", 1)[-1])
    return "".join(out)


def _encoded_words(text: str) -> str:
    """Folded B-encoded words of at most 75 characters, never splitting a UTF-8 sequence and, where it
    can, cutting after a space (whitespace between encoded-words is not part of the text)."""
    data, words, start = text.encode("utf-8"), [], 0
    while start < len(data):
        end = min(start + _WORD_BYTES, len(data))
        if end < len(data):
            space = data.rfind(b" ", start + 15, end)
            if space != -1:
                end = space + 1
        while end < len(data) and data[end] & 0xC0 == 0x80:
            end -= 1
        words.append(f"=?utf-8?b?{base64.b64encode(data[start:end]).decode()}?=")
        start = end
    return "\r\n ".join(words)


@lru_cache(maxsize=64)
def _sender(sender: str) -> str:
    sender = clean(sender)
    match = _MAILBOX.fullmatch(sender)
    if match:
        return mailbox(match.group(1).strip('"'), match.group(2).strip())
    return check_address(sender)


def _message_id(value: str) -> str:
    if not isinstance(value, str) or not _MESSAGE_ID.fullmatch(value) or value.count("@") != 1:
        raise ValueError(f"invalid Message-ID {value!r}")
    return value


def _date(when: dt.datetime) -> str:
    if when.tzinfo is None:
        raise ValueError("the Date of a message must be an aware datetime")
    return format_datetime(when)


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
