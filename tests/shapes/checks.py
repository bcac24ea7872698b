"""What every whole run must hold, read from the files it wrote and the services that show it.

Each check reads a contract file back with the standard library (not the project's writers), and
compares it with the drawn shape, the literal per-line reference of R1–R7 and the other files.
"""

from __future__ import annotations

import csv
import datetime as dt
import email
import email.policy
import html.parser
import io
import json
import re
from collections import Counter, defaultdict
from pathlib import Path

import pandas as pd

from pipeline.domain.calendar import parse_weekdays
from pipeline.domain.rules import NAMED_KINDS, Session, Vaccine
from tests.reference import reference_allocate

from .scenarios import CLOSES, OPENS, Shape

ALLOCATIONS = ["order_id", "finess", "effector", "rpps", "vaccine", "injection", "requested", "allocated", "status",
               "reason"]
DELIVERIES = ["order_id", "finess", "depot_id", "vaccine", "delivery_date", "vials", "status"]
CONFIRMATION = ["order_id", "effector", "rpps", "vaccine", "injection", "requested", "allocated", "status", "reason",
                "delivery_date", "vials", "earliest_appointment", "redistribution_from"]


def rows(path: Path) -> tuple[list[str], list[dict]]:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def session_of(shape: Shape) -> Session:
    """The shape's rules as the session model holds them (the reference reads caps and zone from it)."""
    return Session(id=shape.session_id, timezone=shape.timezone, opens_at=OPENS, closes_at=CLOSES,
                   confirmation_at=dt.datetime(2021, 6, 16, 9), zone=shape.zone,
                   vaccines={v.key: Vaccine(label=v.key, doses_per_vial=v.doses_per_vial, box_vials=v.box,
                                            supply_vials=v.supply, allocation=v.allocation, remainders=v.remainders,
                                            deliver_from=v.deliver_from, deliver_by=v.deliver_by, caps=v.caps)
                             for v in shape.vaccines})


def expected_decisions(shape: Shape, changes: dict | None = None, delivered: list[dict] | None = None) -> dict:
    """{order_id: (requested, allocated, status, reason, capped)} by the literal reference; `delivered`:
    the previous version's deliveries.csv rows, of which a line of a vaccine whose policy the changes
    set keeps what it received by the effective date (R11)."""
    lines = pd.DataFrame([line.__dict__ for line in shape.lines],
                         columns=["order_id", "submitted_at", "finess", "effector", "rpps", "vaccine", "injection",
                                  "vials"])
    officines = pd.DataFrame(shape.pharmacies, columns=["finess", "name", "department", "depot_id"])
    register = pd.DataFrame(shape.professionals, columns=["rpps", "kind", "name", "finess"])
    changes = changes or {}
    session = session_of(shape)
    policies = {key: {name: changes[name][key] for name in ("allocation", "remainders") if key in changes.get(name, {})}
                for key in session.vaccines}
    session = session.model_copy(update={"vaccines": {key: rules.model_copy(update=policies[key])
                                                      for key, rules in session.vaccines.items()}})
    changed = set(changes.get("allocation", {})) | set(changes.get("remainders", {}))
    floors: dict[str, int] = defaultdict(int)
    for row in delivered or []:
        if row["vaccine"] in changed and row["status"] == "scheduled" and row["delivery_date"] <= changes["effective"]:
            floors[row["order_id"]] += int(row["vials"])
    return reference_allocate(session, lines, officines, register, changes.get("cancel", ()), changes.get("supply"),
                              dict(floors))


def capacities(shape: Shape, changes: dict | None = None) -> dict[tuple[str, dt.date], int]:
    """Each depot's vials per day over the delivery window: weekdays, then the scenario's and the
    changes' one-day overrides (R8, R11)."""
    found = {}
    day = shape.first_day
    while day <= shape.last_day:
        for depot in shape.depots:
            found[(depot.depot_id, day)] = depot.capacity if day.weekday() in parse_weekdays(depot.weekdays) else 0
        day += dt.timedelta(days=1)
    overrides = [(d, day, n) for d, day, n in shape.depot_days]
    overrides += [(d["depot_id"], dt.date.fromisoformat(str(d["date"])), d["capacity_vials"])
                  for d in (changes or {}).get("depot_days", [])]
    for depot, day, vials in overrides:
        if (depot, day) in found:
            found[(depot, day)] = vials
    return found


def check_run(shape: Shape, out: Path, version: int, changes: dict | None = None,
              before: dict | None = None) -> dict:
    """Every check of one run version's folder `out` (the top level shows the latest version).
    `changes` are the cumulative changes of a reallocation, `before` the previous version's
    `check_run` result. Returns what a later version is compared with."""
    for name in ("allocations.csv", "deliveries.csv", "rejections.csv", "summary.json", "report.html"):
        assert (out / name).is_file(), f"{name} missing"
        assert (out / "runs" / str(version) / name).is_file(), f"runs/{version}/{name} missing"
    allocations = _allocations(shape, out, changes, (before or {}).get("deliveries"))
    _rejections(shape, out)
    deliveries = _deliveries(shape, out, allocations, changes, before)
    _summary(shape, out, version, allocations, deliveries, changes)
    _manifests(shape, out, deliveries)
    emailed = _emails(shape, out, version, allocations, deliveries, changes, before)
    _report(shape, out)
    return {"allocations": allocations, "deliveries": deliveries, "emailed": emailed}


def _allocations(shape: Shape, out: Path, changes: dict | None, delivered: list[dict] | None) -> dict[str, dict]:
    header, found = rows(out / "allocations.csv")
    assert header[:len(ALLOCATIONS)] == ALLOCATIONS
    by_id = {row["order_id"]: row for row in found}
    assert len(by_id) == len(found) == len(shape.lines), "one row per readable line"
    expected = expected_decisions(shape, changes, delivered)
    for order_id, (requested, allocated, status, reason, _) in expected.items():
        row = by_id[order_id]
        assert (int(row["requested"]), int(row["allocated"]), row["status"], row["reason"]) == \
            (requested, allocated, status, reason), f"R1-R7: {order_id} {row} (the reference: {expected[order_id]})"
    supply = {v.key: v.supply for v in shape.vaccines} | ((changes or {}).get("supply") or {})
    for key, limit in supply.items():
        served = sum(int(row["allocated"]) for row in found if row["vaccine"] == key)
        assert limit is None or served <= limit, f"R7: {served} {key} vials served of a supply of {limit}"
    return by_id


def _rejections(shape: Shape, out: Path) -> None:
    header, found = rows(out / "rejections.csv")
    assert header[:3] == ["line", "order_id", "message"]
    assert [int(row["line"]) for row in found] == shape.malformed, "each malformed row with its line, once"
    assert all(row["message"].strip() for row in found)


def _deliveries(shape: Shape, out: Path, allocations: dict, changes: dict | None, before: dict | None) -> list[dict]:
    header, found = rows(out / "deliveries.csv")
    assert header[:len(DELIVERIES)] == DELIVERIES
    vaccines = {v.key: v for v in shape.vaccines}
    depot_of = {f: depot for f, _, _, depot in shape.pharmacies}
    per_line: Counter = Counter()
    use: Counter = Counter()
    for row in found:
        line, vaccine = allocations[row["order_id"]], vaccines[row["vaccine"]]
        vials = int(row["vials"])
        assert vials > 0 and vials % vaccine.box == 0, f"R6/R8: {row} is not in whole boxes of {vaccine.box}"
        assert row["depot_id"] == depot_of[line["finess"]] and row["finess"] == line["finess"]
        per_line[row["order_id"]] += vials
        if row["status"] == "pending":
            assert row["delivery_date"] == "", f"a pending row has no date: {row}"
            continue
        assert row["status"] == "scheduled", row
        day = dt.date.fromisoformat(row["delivery_date"])
        assert vaccine.deliver_from <= day <= vaccine.deliver_by, f"R8: {row} outside {vaccine.key}'s window"
        use[(row["depot_id"], day)] += vials
    for order_id, line in allocations.items():
        assert per_line[order_id] == int(line["allocated"]), f"R8: {order_id}'s deliveries do not add up"
    capacity = capacities(shape, changes)
    effective = dt.date.fromisoformat(changes["effective"]) if changes else None
    frozen = Counter()
    if before is not None:
        frozen = Counter((r["order_id"], r["delivery_date"], r["vials"]) for r in before["deliveries"]
                         if r["status"] == "scheduled" and dt.date.fromisoformat(r["delivery_date"]) <= effective)
        kept = Counter((r["order_id"], r["delivery_date"], r["vials"]) for r in found
                       if r["status"] == "scheduled" and dt.date.fromisoformat(r["delivery_date"]) <= effective)
        assert kept == frozen, "R11: the deliveries dated on or before `effective` stay as they were, and no other"
    for (depot, day), vials in use.items():
        if effective is not None and day <= effective:
            continue  # what left the depot keeps its capacity (R11)
        assert vials <= capacity.get((depot, day), 0), f"R8: {depot} on {day}: {vials} vials over its capacity"
    if before is None:
        _first_come_first_delivered(shape, found, allocations)
    return found


def _first_come_first_delivered(shape: Shape, deliveries: list[dict], allocations: dict) -> None:
    """R8: within a depot and a vaccine, lines are cut into days in submission order: an earlier
    line's last day (a pending remainder counting as after every day) is no later than a later
    line's first."""
    rank = {line.order_id: (line.submitted_at, line.order_id) for line in shape.lines}
    days: dict[str, list[dt.date]] = defaultdict(list)
    groups: dict[tuple, set[str]] = defaultdict(set)
    for row in deliveries:
        pending = row["status"] == "pending"
        days[row["order_id"]].append(dt.date.max if pending else dt.date.fromisoformat(row["delivery_date"]))
        groups[(row["depot_id"], row["vaccine"])].add(row["order_id"])
    for key, order_ids in groups.items():
        ordered = sorted(order_ids, key=rank.__getitem__)
        for earlier, later in zip(ordered, ordered[1:]):
            assert max(days[earlier]) <= min(days[later]), \
                f"R8: {later} is delivered before the earlier line {earlier} ({key})"


def _summary(shape: Shape, out: Path, version: int, allocations: dict, deliveries: list[dict],
             changes: dict | None) -> None:
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["run"] == version and summary["session"] == shape.session_id
    supply = {v.key: v.supply for v in shape.vaccines} | ((changes or {}).get("supply") or {})
    assert sorted(summary["vaccines"]) == sorted(supply)
    for key, told in summary["vaccines"].items():
        mine = [row for row in allocations.values() if row["vaccine"] == key]
        assert told["lines"] == len(mine)
        assert told["requested"] == sum(int(r["requested"]) for r in mine)
        assert told["allocated"] == sum(int(r["allocated"]) for r in mine)
        assert told["served_lines"] == sum(r["status"] == "served" for r in mine)
        assert told["refused_lines"] == dict(Counter(r["reason"] for r in mine if r["status"] == "refused"))
        assert told["partial_lines"] == dict(Counter(r["reason"] for r in mine if r["status"] == "partial"))
        rows_of = [r for r in deliveries if r["vaccine"] == key]
        assert told["scheduled_vials"] == sum(int(r["vials"]) for r in rows_of if r["status"] == "scheduled")
        assert told["pending_vials"] == sum(int(r["vials"]) for r in rows_of if r["status"] == "pending")
        assert told["supply"] == supply[key]
        assert told["fill_rate"] is None or 0 <= told["fill_rate"] <= 1
        assert told["sold_out_at"] is None or dt.datetime.fromisoformat(told["sold_out_at"]).tzinfo is not None
        fairness = told["fairness"]
        assert list(fairness) == ["fill_rate_by_department", "fill_rate_by_kind", "officines_unserved_share",
                                  "fill_rate_min", "fill_rate_max", "gini"]
        rates = [*fairness["fill_rate_by_department"].values(), *fairness["fill_rate_by_kind"].values()]
        assert all(0 <= rate <= 1 for rate in rates) and (fairness["gini"] is None or 0 <= fairness["gini"] <= 1)
        assert fairness["fill_rate_min"] == min(fairness["fill_rate_by_department"].values(), default=None)
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", summary["digest"]), summary["digest"]
    emails = summary["emails"]
    assert emails["waiting"] == 0, "every email settled before the command ended"


def _manifests(shape: Shape, out: Path, deliveries: list[dict]) -> None:
    """Each depot has its dispatch file; together they carry every scheduled vial."""
    files = {path.stem: path for path in (out / "manifests").rglob("*.csv")}
    assert sorted(files) == sorted(d.depot_id for d in shape.depots), "one dispatch file per depot"
    carried: Counter = Counter()
    for depot_id, path in files.items():
        header, found = rows(path)
        assert header[:6] == ["delivery_date", "finess", "officine", "vaccine", "vials", "boxes"]
        for row in found:
            carried[depot_id] += int(row["vials"]) if row.get("status", "scheduled") == "scheduled" else 0
    scheduled: Counter = Counter()
    for row in deliveries:
        if row["status"] == "scheduled":
            scheduled[row["depot_id"]] += int(row["vials"])
    assert +carried == +scheduled, "the dispatch files carry every scheduled vial, each once"


def _recipients_of(shape: Shape, allocations: dict) -> dict[str, set[str]]:
    """R9: each officine of the register that ordered, each registered professional named on a
    line of a named kind; with the order ids their email lists."""
    officines = {f for f, _, _, _ in shape.pharmacies}
    registered = {r for r, _, _, _ in shape.professionals}
    found: dict[str, set[str]] = defaultdict(set)
    for order_id, row in allocations.items():
        if row["finess"] in officines:
            found[row["finess"]].add(order_id)
        if row["effector"] in NAMED_KINDS and row["rpps"] in registered:
            found[row["rpps"]].add(order_id)
    return found


def _line_state(row: dict, deliveries: list[dict]) -> tuple:
    return (row["allocated"], row["status"], row["reason"],
            tuple(sorted((d["delivery_date"], d["vials"]) for d in deliveries if d["order_id"] == row["order_id"])))


def _emails(shape: Shape, out: Path, version: int, allocations: dict, deliveries: list[dict],
            changes: dict | None, before: dict | None) -> dict[str, set[str]]:
    """One email per recipient (R9), or, after a reallocation, one per recipient whose lines changed
    (R11); each parses strictly and its confirmation.csv lists the recipient's lines."""
    expected = _recipients_of(shape, allocations)
    if before is not None:
        by_line = defaultdict(list)
        for row in deliveries:
            by_line[row["order_id"]].append(row)
        was = defaultdict(list)
        for row in before["deliveries"]:
            was[row["order_id"]].append(row)
        changed = {order_id for order_id, row in allocations.items()
                   if _line_state(row, by_line[order_id]) != _line_state(before["allocations"][order_id], was[order_id])}
        for item in (changes or {}).get("redistribution", [])[len(before.get("redistributed", [])):]:
            changed.add(item["order_id"])
        touched = {who for who, ids in expected.items() if ids & changed}
        touched |= {item["to_rpps"] for item in (changes or {}).get("redistribution", [])[
            len(before.get("redistributed", [])):]}
        expected = {who: ids for who, ids in _recipients_of(shape, allocations).items() if who in touched} | {
            who: set() for who in touched if who not in expected}
    got: dict[str, email.message.EmailMessage] = {}
    for path in sorted((out / "mail").glob("*.eml")) if (out / "mail").is_dir() else []:
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.strict)
        if message["X-Vialflow-Run"] != str(version):
            continue
        recipient = message["X-Vialflow-Recipient"]
        assert recipient not in got, f"R9: {recipient} emailed twice by run {version}"
        got[recipient] = message
    assert sorted(got) == sorted(expected), f"R9/R11: run {version} emailed {sorted(got)}, expected {sorted(expected)}"
    for recipient, message in got.items():
        assert message["X-Vialflow-Session"] == shape.session_id and message["Message-ID"]
        attachments = {part.get_filename(): part for part in message.iter_attachments()}
        assert "confirmation.csv" in attachments, f"{recipient}: no confirmation.csv"
        text = attachments["confirmation.csv"].get_content()
        text = text.decode("utf-8-sig") if isinstance(text, bytes) else text
        reader = csv.DictReader(io.StringIO(text))
        assert list(reader.fieldnames or [])[:len(CONFIRMATION)] == CONFIRMATION
        rows = list(reader)
        listed = {row["order_id"] for row in rows}
        assert expected[recipient] <= listed, f"{recipient}'s confirmation.csv misses {expected[recipient] - listed}"
        # R9: a calendar when some vials have a date, and never an empty one (RFC 5545 wants an event)
        dated = any(row["delivery_date"] for row in rows)
        assert ("livraisons.ics" in attachments) == dated, f"{recipient}: livraisons.ics attached: {not dated}"
        if dated:
            calendar = attachments["livraisons.ics"].get_content()
            calendar = calendar.decode("utf-8") if isinstance(calendar, bytes) else calendar
            assert "BEGIN:VEVENT" in calendar, f"{recipient}: an empty livraisons.ics"
        body = message.get_body(("plain",))
        assert body is not None and body.get_content().strip(), f"{recipient}: no text part"
    return expected


class _Parser(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: Counter = Counter()

    def handle_starttag(self, tag, attrs) -> None:
        self.tags[tag] += 1


def _report(shape: Shape, out: Path) -> None:
    text = (out / "report.html").read_text(encoding="utf-8")
    parser = _Parser()
    parser.feed(text)
    assert parser.tags["html"] == 1 and parser.tags["svg"] >= 1, "report.html is a page with its charts"
    for vaccine in shape.vaccines:
        assert vaccine.key.capitalize() in text, f"report.html does not name {vaccine.key}"
