"""`vialflow verify`: a stored run version derived again from what is stored of it, and compared.

The session's frozen inputs (rules, registers, orders) and the chain of changes up to the version are
run through the pipeline's own steps (allocate, schedule, the choice of recipients), each version from
the one derived before it, never from a stored one: a row changed by hand anywhere shows. Then every
decision and delivery, the outbox's recipients, each email's content (without Date, Message-ID and
DKIM signature) and the data files of the run's folders are compared with what is stored.
"""

from __future__ import annotations

import csv
import filecmp
import itertools
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from pipeline.adapters.db import outbox, runs, sessions
from pipeline.adapters.mail.render import render
from pipeline.domain.allocate import TRACE_COLUMNS
from pipeline.domain.digest import canonical_deliveries, run_digest
from pipeline.domain.outbox import changed_recipients, line_states, recipients_of
from pipeline.domain.vocabulary import EmailState

from .letters import confirmations
from .outputs import MAIL_CHUNK, write_data
from .refusals import RunUnderWay
from .runs import decide, delivered_by, plan, served_of, stored_run

COMPARED = ["requested", "capped", "allocated", "status", "reason", "rank", *TRACE_COLUMNS]
DATA_FILES = ("allocations.csv", "deliveries.csv", "rejections.csv")
UNSIGNED = (b"date", b"message-id", b"dkim-signature")  # what may differ between two sendings of one email


@dataclass(frozen=True)
class Verdict:
    version: int
    digest: str                    # the derived run's `sha256:<hex>`
    difference: str | None         # None: all agree; else a line naming the first order_id or recipient
    counts: dict                   # what was compared: lines, deliveries, emails, files


def verify(engine: Engine, session_id: str, version: int | None, folders: list[Path], sender: str) -> Verdict:
    """Derive `version` (default the latest) of the session again and compare it with the database,
    and with the emails and data files of each of `folders` that holds them (a run folder, an export)."""
    with engine.connect() as c:
        target = runs.run_row(c, stored_run(c, session_id, version))
        if target.prepared_at is None:
            raise RunUnderWay(session_id, target.version)
        pharmacies = sessions.registers(c, session_id, "pharmacies")
        professionals = sessions.registers(c, session_id, "professionals")
        derived = None
        for number in range(1, target.version + 1):
            row = runs.run_row(c, runs.run_id(c, session_id, number))
            derived = _derive(c, row, derived, pharmacies, professionals)
        lines, deliveries, recipients = derived[1:]
        digest = run_digest(lines, deliveries)
        counts = {"lines": len(lines), "deliveries": len(deliveries)}
        difference = (_decisions(lines, runs.stored_decisions(c, target.id))
                      or _deliveries(deliveries, runs.stored_deliveries(c, target.id))
                      or _recipients(recipients, outbox.outbox_rows(c, target.id)))
        if difference is None and target.digest is not None and target.digest != digest:
            difference = f"version {target.version}: its stored digest {target.digest} is not that of its rows, {digest}"
        if difference is None:
            difference, counts["emails"] = _emails(c, target, folders, sender)
    if difference is None:
        difference, counts["files"] = _files(engine, target, folders)
    return Verdict(int(target.version), digest, difference, counts)


def _derive(c, row, before, pharmacies: pd.DataFrame, professionals: pd.DataFrame):
    """One version derived: (its row, its lines, its deliveries, the recipients its outbox writes to),
    from the version derived before it (`before`, None for the first)."""
    previous, previous_deliveries = (before[0], before[2]) if before is not None else (None, None)
    delivered = (delivered_by(previous_deliveries, row.changes.effective)
                 if previous is not None and row.changes.effective is not None else None)
    lines = decide(c, row.session_id, row.changes, delivered)
    deliveries = plan(c, row.session_id, row.changes, previous, served_of(lines, pharmacies),
                      previous_deliveries=previous_deliveries)
    recipients = recipients_of(lines, pharmacies, professionals)
    if before is not None:
        parties = row.changes.added_since(previous.changes)
        touched = changed_recipients(line_states(before[1], _dated(before[2])), line_states(lines, _dated(deliveries)),
                                     parties)
        receivers = {item.to_rpps for item in parties} & set(professionals["rpps"])
        recipients = sorted((set(recipients) | receivers) & touched)
    return row, lines, deliveries, recipients


def _dated(deliveries: pd.DataFrame) -> pd.DataFrame:
    """Deliveries with their dates as the stored rows give them (a day, None when pending)."""
    dates = pd.to_datetime(deliveries["delivery_date"], errors="coerce")
    return deliveries.assign(delivery_date=pd.Series([None if pd.isna(when) else when.date() for when in dates],
                                                     index=deliveries.index, dtype=object))


def _decisions(derived: pd.DataFrame, stored: pd.DataFrame) -> str | None:
    """The first order_id whose stored decision is not the derived one, said with the field that differs."""
    both = derived[["order_id", *COMPARED]].merge(stored[["order_id", *COMPARED]], on="order_id", how="outer",
                                                   suffixes=("_derived", "_stored"), indicator="side")
    both = both.sort_values("order_id", kind="stable").reset_index(drop=True)
    bad = (both["side"] != "both").to_numpy().copy()
    for name in COMPARED:
        bad |= ~_same(both[f"{name}_derived"], both[f"{name}_stored"])
    if not bad.any():
        return None
    record = both.iloc[int(np.flatnonzero(bad)[0])]
    if record["side"] != "both":
        return f"{record['order_id']}: a line only the {'derived' if record['side'] == 'left_only' else 'stored'} version has"
    for name in COMPARED:
        derived_value, stored_value = record[f"{name}_derived"], record[f"{name}_stored"]
        if not _same(pd.Series([derived_value], dtype=object), pd.Series([stored_value], dtype=object))[0]:
            return (f"{record['order_id']}: {name} is {_shown(stored_value)} in the database, "
                    f"{_shown(derived_value)} derived again")
    return f"{record['order_id']}: not the stored decision"


def _deliveries(derived: pd.DataFrame, stored: pd.DataFrame) -> str | None:
    """The first order_id whose stored deliveries are not the derived ones."""
    def by_line(frame: pd.DataFrame) -> pd.Series:
        rows = canonical_deliveries(frame)
        text = (rows["delivery_date"].replace("", "-") + ":" + rows["vials"] + " " + rows["vaccine"] + "@"
                + rows["depot_id"] + " " + rows["status"])
        return text.groupby(rows["order_id"], sort=True).agg(", ".join)

    derived_days, stored_days = by_line(derived), by_line(stored)
    both = pd.concat([derived_days.rename("derived"), stored_days.rename("stored")], axis=1).sort_index()
    differ = both[both["derived"].fillna("") != both["stored"].fillna("")]
    if differ.empty:
        return None
    order_id, record = differ.index[0], differ.iloc[0]
    return (f"{order_id}: delivered {_shown(record['stored'])} in the database, "
            f"{_shown(record['derived'])} derived again")


def _recipients(derived: list[str], rows: pd.DataFrame) -> str | None:
    """The first recipient (FINESS or RPPS) that only one of the outbox and the derived version writes to."""
    stored = set(rows["recipient_id"])
    for recipient in sorted(stored ^ set(derived)):
        where = "the outbox" if recipient in stored else "the derived version"
        return f"{recipient}: a recipient only {where} writes to"
    return None


def _emails(c, target, folders: list[Path], sender: str) -> tuple[str | None, int]:
    """Each sent email's copies in the folders' `mail/`, against the email rebuilt from the stored run
    (which the rows compared above make the derived one's)."""
    sent = outbox.outbox_rows(c, target.id, EmailState.SENT.value)
    mailboxes = [folder / "mail" for folder in folders if (folder / "mail").is_dir()]
    if not mailboxes or sent.empty:
        return None, 0
    prefix = f"{target.session_id}-r{target.version}-"
    copies: dict[tuple[Path, str], list[Path]] = {}
    for mailbox in mailboxes:  # listed once: `stem.eml`, then a resend's `stem-2.eml`...
        for path in sorted(mailbox.glob(f"{prefix}*.eml")):
            recipient = path.stem[len(prefix):].split("-")[0]
            copies.setdefault((mailbox, recipient), []).append(path)
    compared = 0
    for start in range(0, len(sent), MAIL_CHUNK):
        for confirmation in confirmations(c, target, sent.iloc[start:start + MAIL_CHUNK], sender):
            expected = _content(render(confirmation))
            for mailbox in mailboxes:
                found = copies.get((mailbox, confirmation.recipient_id))
                if not found:
                    return (f"{confirmation.recipient_id}: its email of version {target.version} is not in {mailbox}",
                            compared)
                for copy in found:
                    if _content(copy.read_bytes()) != expected:
                        return f"{confirmation.recipient_id}: {copy} is not the email the stored run writes", compared
                    compared += 1
    return None, compared


def _content(raw: bytes) -> bytes:
    """An email without the header fields two sendings of it may differ by (each with its folded
    lines), its line ends made alike: read as bytes, as the server received them."""
    text = raw.replace(b"\r\n", b"\n")
    end = text.find(b"\n\n")
    head, body = (text, b"") if end < 0 else (text[:end], text[end:])
    kept, skipping = [], False
    for line in head.split(b"\n"):
        if line[:1] in (b" ", b"\t"):  # a folded line belongs to the field above it
            if not skipping:
                kept.append(line)
            continue
        skipping = line.split(b":", 1)[0].strip().lower() in UNSIGNED
        if not skipping:
            kept.append(line)
    return b"\n".join(kept) + body


def _files(engine: Engine, target, folders: list[Path]) -> tuple[str | None, int]:
    """The data files of each folder's copy of the run (and of its top level when its summary says it
    shows this run), against those written again from the database; and the digest its summary carries."""
    copies = [path for folder in folders for path in (folder / "runs" / str(target.version), folder)
              if (path / "allocations.csv").is_file() and _summary(path).get("run", _named(path)) == target.version]
    if not copies:
        return None, 0
    compared = 0
    with tempfile.TemporaryDirectory(prefix="vialflow-verify-") as scratch:
        fresh = Path(scratch)
        write_data(engine, target.id, fresh)
        names = [*DATA_FILES, *sorted(str(p.relative_to(fresh)) for p in (fresh / "manifests").rglob("*.csv"))]
        for copy in copies:
            for name in names:
                if not (copy / name).is_file():
                    return f"{name}: missing from {copy}", compared
                if not filecmp.cmp(fresh / name, copy / name, shallow=False):
                    return _first_row(fresh / name, copy / name), compared
                compared += 1
            said = _summary(copy).get("digest")
            if said is not None and said != target.digest:
                return f"{copy / 'summary.json'}: its digest {said} is not the stored run's {target.digest}", compared
    return None, compared


def _summary(path: Path) -> dict:
    """The folder's summary.json, or {} when there is none to read."""
    try:
        found = json.loads((path / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def _named(path: Path) -> int | None:
    """The version a folder without a readable summary is the copy of: its name's, under `runs/`."""
    return int(path.name) if path.name.isdigit() else None


def _first_row(expected: Path, found: Path) -> str:
    """The first row of a data file that differs from its fresh writing, named by its order_id (the
    first of a dispatch row's order_ids), else by its number."""
    with expected.open(encoding="utf-8", newline="") as a, found.open(encoding="utf-8", newline="") as b:
        wanted, read = csv.reader(a), csv.reader(b)
        header = next(wanted, [])
        next(read, None)
        for number, (row, copy) in enumerate(itertools.zip_longest(wanted, read), start=2):
            if row != copy:
                fields = dict(zip(header, row or copy or []))
                named = fields.get("order_id") or (fields.get("order_ids") or "").split(" ")[0] or f"row {number}"
                return f"{named}: {found} row {number} is not the stored run's"
    return f"{found}: its header is not the stored run's"


def _same(a: pd.Series, b: pd.Series) -> np.ndarray:
    """Element by element: both missing, or equal (numbers as numbers, whatever their width)."""
    missing_a, missing_b = a.isna().to_numpy(), b.isna().to_numpy()
    numbers_a, numbers_b = pd.to_numeric(a, errors="coerce"), pd.to_numeric(b, errors="coerce")
    numeric = numbers_a.notna().to_numpy() & numbers_b.notna().to_numpy()
    equal = np.where(numeric, numbers_a.to_numpy(float, na_value=np.nan) == numbers_b.to_numpy(float, na_value=np.nan),
                     a.astype(str).to_numpy() == b.astype(str).to_numpy())
    return (missing_a & missing_b) | (~missing_a & ~missing_b & equal)


def _shown(value) -> str:
    return "nothing" if value is None or (not isinstance(value, str) and pd.isna(value)) else str(value)
