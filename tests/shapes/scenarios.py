"""Whole scenarios drawn from the space of inputs the contract allows, as hypothesis strategies.

A drawn `Shape` is plain data: the session's vaccines, zone and calendar, the registers, the order
lines (valid ones, and the malformed rows with the line numbers they get in orders.csv). `write`
turns it into a scenario folder; the checks compare what a run made of it with what the shape says.
Hypothesis shrinks a failing shape towards the smallest one: fewer vaccines, depots, officines
and lines, plain values.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from hypothesis import strategies as st

from pipeline.domain.rules import INJECTIONS, KINDS, NAMED_KINDS, PROFESSIONAL_KINDS

OPENS = dt.datetime(2021, 6, 14, 8)  # local time in the session's time zone
CLOSES = dt.datetime(2021, 6, 15, 23)
FIRST_DAY = dt.date(2021, 6, 16)  # the earliest deliver_from drawn
# Metropolitan, Corsican and overseas departments, each with the time zone of a session held there.
ZONES = {"75": "Europe/Paris", "92": "Europe/Paris", "69": "Europe/Paris", "13": "Europe/Paris",
         "2A": "Europe/Paris", "2B": "Europe/Paris", "971": "America/Guadeloupe", "972": "America/Martinique",
         "973": "America/Cayenne", "974": "Indian/Reunion", "976": "Indian/Mayotte"}
DEPARTMENTS = list(ZONES)
VACCINES = ["moderna", "janssen", "astrazeneca", "pfizer", "novavax", "valneva"]
WHOLESALERS = ["OCP Répartition", "Alliance Healthcare Répartition", "CERP Rouen", "Phoenix Pharma",
               "Astera l'Union"]
WEEKDAYS = ["Mon-Fri", "Mon,Wed,Fri", "Tue,Thu", "Sat", "Mon-Sun", "Mon-Wed,Sat"]
SUPPLIES = ["absent", "zero", "scarce", "ample"]
POLICIES = [("fcfs", False), ("fcfs", True), ("fcfs_fill", False), ("fcfs_fill", True), ("pro_rata", False),
            ("pro_rata", True)]
# What a malformed orders.csv row looks like, and the field the reader names for it.
MALFORMED = ["vials-zero", "vials-text", "vials-negative", "no-offset", "effector", "injection", "vaccine",
             "duplicate", "missing-finess", "order-id", "too-many-fields", "finess"]


@dataclass(frozen=True)
class VaccineShape:
    key: str
    doses_per_vial: int
    box: int
    supply: int | None
    supply_kind: str
    allocation: str
    remainders: bool
    deliver_from: dt.date
    deliver_by: dt.date
    caps: dict  # kind -> injection -> vials


@dataclass(frozen=True)
class Depot:
    depot_id: str
    wholesaler: str
    capacity: int
    weekdays: str


@dataclass(frozen=True)
class Line:
    order_id: str
    submitted_at: pd.Timestamp  # UTC
    finess: str
    effector: str
    rpps: str
    vaccine: str
    injection: str
    vials: int


@dataclass
class Shape:
    timezone: str
    zone: str | tuple[str, ...]
    vaccines: list[VaccineShape]
    depots: list[Depot]
    depot_days: list[tuple[str, dt.date, int]]
    pharmacies: list[tuple[str, str, str, str]]       # finess, name, department, depot_id
    professionals: list[tuple[str, str, str, str]]    # rpps, kind, name, finess
    lines: list[Line]
    rows: list[str] = field(default_factory=list)      # orders.csv's data rows, in file order
    malformed: list[int] = field(default_factory=list)  # the line numbers of the malformed rows
    session_id: str = "shape"

    @property
    def first_day(self) -> dt.date:
        return min(v.deliver_from for v in self.vaccines)

    @property
    def last_day(self) -> dt.date:
        return max(v.deliver_by for v in self.vaccines)

    def describe(self) -> str:
        """One line per part, for a failure's message."""
        parts = [f"zone {self.zone} ({self.timezone}), {len(self.lines)} lines, {len(self.malformed)} malformed rows"]
        parts += [f"  {v.key}: box {v.box}, supply {v.supply_kind}={v.supply}, {v.allocation} remainders="
                  f"{v.remainders}, {v.deliver_from}..{v.deliver_by}, caps {v.caps}" for v in self.vaccines]
        parts += [f"  depot {d.depot_id}: {d.capacity}/day {d.weekdays}" for d in self.depots]
        parts += [f"  depot day {d}" for d in self.depot_days]
        return "\n".join(parts)


def _caps(draw) -> dict:
    """Caps on some kinds only; now and then a kind open with a cap of 0, or a vaccine open to nobody."""
    caps = {}
    for kind in KINDS:
        if draw(st.integers(0, 2)) == 0:
            continue
        opened = {injection: draw(st.sampled_from([0, 1, 5, 10, 10, 20, 30]))
                  for injection in INJECTIONS if draw(st.booleans()) or injection == "first"}
        caps[kind] = opened
    return caps


def _vaccine(draw, key: str) -> VaccineShape:
    allocation, remainders = draw(st.sampled_from(POLICIES))
    start = FIRST_DAY + dt.timedelta(days=draw(st.integers(0, 8)))
    return VaccineShape(key=key, doses_per_vial=draw(st.sampled_from([1, 5, 10, 20])),
                        box=draw(st.sampled_from([1, 5, 10])), supply=None,
                        supply_kind=draw(st.sampled_from(SUPPLIES)), allocation=allocation, remainders=remainders,
                        deliver_from=start, deliver_by=start + dt.timedelta(days=draw(st.integers(0, 12))),
                        caps=_caps(draw))


def _depots(draw) -> tuple[list[Depot], list[tuple[str, dt.date, int]]]:
    depots = []
    for number in range(draw(st.integers(1, 4))):
        capacity = draw(st.sampled_from([0, 3, 10, 25, 60, 1000]))  # 0: closed throughout
        depots.append(Depot(f"D-{number + 1}", draw(st.sampled_from(WHOLESALERS)), capacity,
                            draw(st.sampled_from(WEEKDAYS))))
    days = []
    window = [FIRST_DAY + dt.timedelta(days=k) for k in range(22)]
    for depot in depots:
        if draw(st.integers(0, 5)) == 0:  # closed on every day of the delivery window
            days += [(depot.depot_id, day, 0) for day in window]
            continue
        chosen = draw(st.lists(st.sampled_from(window), unique=True, max_size=4))
        days += [(depot.depot_id, day, draw(st.sampled_from([0, 0, 5, 40]))) for day in sorted(chosen)]
    return depots, days


def _finess(department: str, number: int) -> str:
    return f"{department[:2]}{number:07d}"


@st.composite
def shapes(draw, max_lines: int = 120) -> Shape:
    """A whole scenario: 1 to 6 vaccines, every supply policy, boxes of 1, 5 or 10, caps on some kinds
    only, a national or territorial zone, depot calendars with closed and exceptional days, 0 to
    `max_lines` order lines and a few malformed rows."""
    national = draw(st.booleans())
    zone: str | tuple[str, ...] = "national" if national else tuple(
        draw(st.lists(st.sampled_from(DEPARTMENTS), min_size=1, max_size=3, unique=True)))
    timezone = "Europe/Paris" if national else ZONES[zone[0]]
    keys = draw(st.lists(st.sampled_from(VACCINES), min_size=1, max_size=6, unique=True))
    vaccines = [_vaccine(draw, key) for key in keys]
    # Now and then no depot at all, and so no officine: a session of unknown officines only.
    depots, depot_days = _depots(draw) if draw(st.integers(0, 11)) else ([], [])
    # Officines mostly in the zone, some outside; a zone department may have none.
    where = list(zone) if not national else DEPARTMENTS
    pharmacies = []
    for number in range(draw(st.integers(0, 12)) if depots else 0):
        department = draw(st.sampled_from(where)) if draw(st.integers(0, 4)) else draw(st.sampled_from(DEPARTMENTS))
        finess = _finess(department, number + 1)
        pharmacies.append((finess, f"Pharmacie n°{number + 1} de l'Église", department,
                           draw(st.sampled_from(depots)).depot_id))
    professionals = []
    for number in range(draw(st.integers(0, 14))):
        kind = draw(st.sampled_from(PROFESSIONAL_KINDS))
        attached = draw(st.sampled_from(pharmacies))[0] if pharmacies and draw(st.integers(0, 6)) else "990000001"
        professionals.append((f"{10000000000 + number * 7919:011d}", kind, f"Dr Élodie N'Guyen {number}", attached))
    lines = _lines(draw, max_lines, timezone, keys, pharmacies, professionals)
    shape = Shape(timezone, zone, vaccines, depots, depot_days, pharmacies, professionals, lines)
    shape.vaccines = [_with_supply(draw, v, lines) for v in vaccines]
    _rows(draw, shape)
    return shape


def _lines(draw, most: int, timezone: str, keys: list[str], pharmacies, professionals) -> list[Line]:
    """Order lines drawn one by one (so that hypothesis shrinks each towards the plainest line):
    mostly plausible (a known officine, a professional through their officine), now and then an
    unknown officine or professional, a line outside the window or at its very ends, ties."""
    opens = pd.Timestamp(OPENS).tz_localize(timezone).tz_convert("UTC")
    closes = pd.Timestamp(CLOSES).tz_localize(timezone).tz_convert("UTC")
    span = int((closes - opens).total_seconds())
    instants = st.sampled_from([0, 0, 1, 15, 60, 3600, span // 2, span - 1, -1, span, span + 60]) | \
        st.integers(0, span - 1)
    finesses = [p[0] for p in pharmacies] or ["990000002"]
    lines = []
    for number in range(draw(st.integers(0, most))):
        effector = draw(st.sampled_from(KINDS))
        finess = draw(st.sampled_from(finesses) if draw(st.integers(0, 19)) else st.just("990000002"))
        rpps = ""
        if effector in NAMED_KINDS:
            mine = [p for p in professionals if p[1] == effector]
            if mine and draw(st.integers(0, 6)):
                rpps, _, _, attached = draw(st.sampled_from(mine))
                finess = attached if draw(st.integers(0, 9)) else finess
            else:
                rpps = draw(st.sampled_from([p[0] for p in professionals] + ["", "19999999999"]))
        lines.append(Line(f"L-{number:04d}", opens + pd.Timedelta(seconds=draw(instants),
                                                                  milliseconds=draw(st.integers(0, 999))),
                          finess, effector, rpps, draw(st.sampled_from(keys)), draw(st.sampled_from(INJECTIONS)),
                          draw(st.sampled_from([1, 2, 3, 5, 10, 12, 20, 30]))))
    return lines


def _with_supply(draw, vaccine: VaccineShape, lines: list[Line]) -> VaccineShape:
    """Scarce and ample are measured against the vaccine's requested vials (a scarce supply may be
    smaller than the first line, sold out at once)."""
    demand = sum(line.vials for line in lines if line.vaccine == vaccine.key)
    supply = {"absent": None, "zero": 0, "scarce": demand * draw(st.sampled_from([0, 1, 3, 5])) // 10
              + draw(st.integers(0, 12)), "ample": demand * 2 + 10}[vaccine.supply_kind]
    return VaccineShape(**{**vaccine.__dict__, "supply": supply})


def _rows(draw, shape: Shape) -> None:
    """orders.csv's rows in a drawn file order, with malformed rows among them; records their lines."""
    rows = []
    zone_offset = {"Z": "UTC", "+02:00": "Europe/Paris", "local": shape.timezone}
    for line in shape.lines:
        written = draw(st.sampled_from(list(zone_offset)))
        at = line.submitted_at.tz_convert(zone_offset[written])
        text = at.isoformat(timespec="milliseconds")
        if written == "Z":
            text = text.replace("+00:00", "Z")
        rows.append(f"{line.order_id},{text},{line.finess},{line.effector},{line.rpps},{line.vaccine},"
                    f"{line.injection},{line.vials}")
    rows = draw(st.permutations(rows)) if len(rows) < 40 else rows
    bad = draw(st.lists(st.sampled_from(MALFORMED), max_size=5))
    for number, kind in enumerate(bad):
        row = _malformed(kind, number, shape, rows)
        if row is None:
            continue
        # A duplicate goes after the row it copies; any other anywhere.
        first = next((k for k, r in enumerate(rows) if r.split(",")[0] == row.split(",")[0]), -1)
        rows.insert(draw(st.integers(first + 1, len(rows))), row)
    shape.rows = rows
    valid = {line.order_id for line in shape.lines}
    seen: set[str] = set()
    for number, row in enumerate(rows, start=2):
        order_id = row.split(",")[0]
        if order_id not in valid or order_id in seen:
            shape.malformed.append(number)
        seen.add(order_id)


def _malformed(kind: str, number: int, shape: Shape, rows: list[str]) -> str | None:
    key = shape.vaccines[0].key
    base = f"X-{number:03d},2021-06-14T10:00:00.000+02:00,750000001,pharmacien,,{key},first"
    if kind == "duplicate":
        return rows[0] if rows else None
    return {"vials-zero": f"{base},0", "vials-text": f"{base},dix", "vials-negative": f"{base},-3",
            "no-offset": f"X-{number:03d},2021-06-14T10:00:00,750000001,pharmacien,,{key},first,1",
            "effector": f"X-{number:03d},2021-06-14T10:00:00Z,750000001,dentiste,,{key},first,1",
            "injection": f"X-{number:03d},2021-06-14T10:00:00Z,750000001,pharmacien,,{key},third,1",
            "vaccine": f"X-{number:03d},2021-06-14T10:00:00Z,750000001,pharmacien,,zz-unknown,first,1",
            "missing-finess": f"X-{number:03d},2021-06-14T10:00:00Z,,pharmacien,,{key},first,1",
            "order-id": f"bad id {number},2021-06-14T10:00:00Z,750000001,pharmacien,,{key},first,1",
            "too-many-fields": f"{base},1,extra",
            "finess": f"X-{number:03d},2021-06-14T10:00:00Z,7500,pharmacien,,{key},first,1"}[kind]


def write(shape: Shape, folder: Path) -> Path:
    """The scenario folder of `shape` (CONTRACT.md)."""
    folder.mkdir(parents=True, exist_ok=True)
    zone = '"national"' if shape.zone == "national" else "[" + ", ".join(f'"{d}"' for d in shape.zone) + "]"
    toml = [f'id = "{shape.session_id}"', 'reference = "DGS-URGENT N°2021_60"',
            'title = "Session générée"', f'timezone = "{shape.timezone}"', f'opens_at = "{OPENS.isoformat()}"',
            f'closes_at = "{CLOSES.isoformat()}"', 'confirmation_at = "2021-06-16T09:00:00"', f"zone = {zone}"]
    for v in shape.vaccines:
        caps = ", ".join(f"{kind} = {{ " + ", ".join(f"{inj} = {n}" for inj, n in opened.items()) + " }"
                         for kind, opened in v.caps.items())
        toml += ["", f"[vaccines.{v.key}]", f'label = "{v.key.capitalize()} (vaccin)"',
                 f"doses_per_vial = {v.doses_per_vial}", f"box_vials = {v.box}"]
        toml += [f"supply_vials = {v.supply}"] if v.supply is not None else []
        toml += [f'allocation = "{v.allocation}"', f"remainders = {str(v.remainders).lower()}",
                 f'deliver_from = "{v.deliver_from}"', f'deliver_by = "{v.deliver_by}"', f"caps = {{ {caps} }}"]
    (folder / "session.toml").write_text("\n".join(toml) + "\n", encoding="utf-8")
    _csv(folder / "pharmacies.csv", "finess,name,email,department,depot_id",
         [f'{f},"{name}",officine.{f}@pharma.example.fr,{d},{depot}' for f, name, d, depot in shape.pharmacies])
    _csv(folder / "professionals.csv", "rpps,kind,name,email,finess",
         [f'{r},{kind},"{name}",pro.{r}@sante.example.fr,{f}' for r, kind, name, f in shape.professionals])
    _csv(folder / "depots.csv", "depot_id,wholesaler,name,capacity_vials,weekdays",
         [f'{d.depot_id},{d.wholesaler},"{d.wholesaler}, dépôt {d.depot_id}",{d.capacity},"{d.weekdays}"'
          for d in shape.depots])
    _csv(folder / "depot_days.csv", "depot_id,date,capacity_vials",
         [f"{depot},{day},{n}" for depot, day, n in shape.depot_days])
    _csv(folder / "orders.csv", "order_id,submitted_at,finess,effector,rpps,vaccine,injection,vials", shape.rows)
    return folder


def _csv(path: Path, header: str, rows: list[str]) -> None:
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")


def dump(shape: Shape) -> str:
    """`shape` as JSON: a regression scenario keeps it beside its files, for the checks."""
    def plain(value):
        if isinstance(value, (dt.date, pd.Timestamp)):
            return value.isoformat()
        raise TypeError(type(value))
    return json.dumps(dataclasses.asdict(shape), default=plain, ensure_ascii=False, indent=1)


def load(text: str) -> Shape:
    data = json.loads(text)
    day = dt.date.fromisoformat
    data["vaccines"] = [VaccineShape(**{**v, "deliver_from": day(v["deliver_from"]), "deliver_by": day(v["deliver_by"])})
                        for v in data["vaccines"]]
    data["depots"] = [Depot(**d) for d in data["depots"]]
    data["depot_days"] = [(d, day(when), n) for d, when, n in data["depot_days"]]
    data["pharmacies"] = [tuple(p) for p in data["pharmacies"]]
    data["professionals"] = [tuple(p) for p in data["professionals"]]
    data["lines"] = [Line(**{**line, "submitted_at": pd.Timestamp(line["submitted_at"])}) for line in data["lines"]]
    if data["zone"] != "national":
        data["zone"] = tuple(data["zone"])
    return Shape(**data)
