"""The scenario generator and the fixture of the 14 June 2021 session: formats, consistency, the notice's numbers."""

from __future__ import annotations

import csv
import datetime as dt
import re
import tomllib
from collections import Counter
from pathlib import Path

import pytest

from pipeline.domain.rules import Session
from pipeline.generator.generate import generate_scenario

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "2021-06-14"
HEADERS = {  # CONTRACT.md, "A scenario: one session's inputs, as a folder"
    "pharmacies.csv": "finess,name,email,department,depot_id",
    "professionals.csv": "rpps,kind,name,email,finess",
    "depots.csv": "depot_id,wholesaler,name,capacity_vials,weekdays",
    "depot_days.csv": "depot_id,date,capacity_vials",
    "orders.csv": "order_id,submitted_at,finess,effector,rpps,vaccine,injection,vials",
}
STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d")
NAMED = ("medecin", "medecin_travail", "sage_femme")


def read(folder: Path, name: str) -> list[dict[str, str]]:
    with open(folder / name, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def session_of(folder: Path) -> Session:
    with open(folder / "session.toml", "rb") as f:
        return Session.model_validate(tomllib.load(f))


def readable_orders(folder: Path, session: Session) -> tuple[list[dict[str, str]], list[int]]:
    """The rows CONTRACT.md calls orders, and the line numbers of the others."""
    orders, unreadable, seen = [], [], set()
    for line, row in enumerate(read(folder, "orders.csv"), start=2):
        fields = [row.get(k) or "" for k in HEADERS["orders.csv"].split(",") if k != "rpps"]
        ok = (all(fields) and row["order_id"] not in seen and STAMP.fullmatch(row["submitted_at"]) is not None
              and row["vials"].isdigit() and int(row["vials"]) > 0 and row["vaccine"] in session.vaccines)
        if ok:
            try:
                dt.datetime.fromisoformat(row["submitted_at"])
            except ValueError:
                ok = False
        seen.add(row["order_id"])
        (orders.append(row) if ok else unreadable.append(line))
    return orders, unreadable


def outright_refusal(row: dict[str, str], session: Session, officines: set[str], pros: dict[str, dict]) -> str | None:
    """The refusals a line gets on its own (CONTRACT.md's order), without caps or supply."""
    at = dt.datetime.fromisoformat(row["submitted_at"])
    if not session.opens <= at < session.closes:
        return "window"
    if row["finess"] not in officines:
        return "unknown_pharmacy"
    if session.vaccines[row["vaccine"]].cap(row["effector"], row["injection"]) is None:
        return "eligibility"
    if row["effector"] in NAMED:
        pro = pros.get(row["rpps"])
        if pro is None or pro["kind"] != row["effector"]:
            return "unknown_professional"
        if pro["finess"] != row["finess"]:
            return "not_attached"
    return None


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("small")
    return out, generate_scenario(out, seed=7, pharmacies=300)


# The fixture: the notice as data, and its small scenario.

def test_r1_r12_fixture_window_and_zone_are_the_notices():
    session = session_of(FIXTURE)
    assert (session.id, session.reference, session.timezone) == ("2021-06-14", "DGS-URGENT N°2021_60", "Europe/Paris")
    assert session.opens_at == dt.datetime(2021, 6, 14, 8, 0)
    assert session.closes_at == dt.datetime(2021, 6, 15, 23, 0)
    assert session.confirmation_at == dt.datetime(2021, 6, 18, 9, 0)
    assert session.zone == "national"


def test_r3_r4_fixture_caps_are_the_notices():
    vaccines = session_of(FIXTURE).vaccines
    assert vaccines["moderna"].caps == {"medecin_travail": {"first": 10}}
    assert vaccines["janssen"].caps == {k: {"first": 10} for k in ("medecin", "pharmacien", "infirmier", "sage_femme")}
    assert vaccines["astrazeneca"].caps == {
        "medecin": {"first": 5, "second": 5}, "pharmacien": {"first": 5, "second": 5},
        "infirmier": {"first": 10}, "sage_femme": {"first": 10},
    }


def test_r6_r7_fixture_moderna_is_boxes_of_ten_first_come_first_served_without_remainders():
    moderna = session_of(FIXTURE).vaccines["moderna"]
    assert (moderna.box_vials, moderna.allocation, moderna.remainders) == (10, "fcfs", False)
    assert moderna.supply_vials is not None and moderna.supply_vials % 10 == 0


def test_r8_fixture_delivery_dates_are_the_notices():
    vaccines = session_of(FIXTURE).vaccines
    assert {k: (v.deliver_from, v.deliver_by) for k, v in vaccines.items()} == {
        "moderna": (dt.date(2021, 6, 21), dt.date(2021, 7, 2)),
        "janssen": (dt.date(2021, 6, 17), dt.date(2021, 6, 25)),
        "astrazeneca": (dt.date(2021, 6, 17), dt.date(2021, 6, 25)),
    }
    assert {k: v.doses_per_vial for k, v in vaccines.items()} == {"moderna": 10, "janssen": 5, "astrazeneca": 10}


def test_fixture_registers_are_consistent_and_depot_days_close_one_day():
    officines = {r["finess"]: r for r in read(FIXTURE, "pharmacies.csv")}
    depots = {r["depot_id"] for r in read(FIXTURE, "depots.csv")}
    assert {r["finess"] for r in read(FIXTURE, "professionals.csv")} <= set(officines)
    assert {r["depot_id"] for r in officines.values()} <= depots
    assert {"2A", "2B"} <= {r["department"] for r in officines.values()}
    assert len({r["wholesaler"] for r in read(FIXTURE, "depots.csv")}) == 3
    assert [(r["depot_id"], r["capacity_vials"]) for r in read(FIXTURE, "depot_days.csv")] == [("D-OCP-69", "0")]


def test_fixture_scenario_exercises_every_refusal_and_three_unreadable_rows():
    session = session_of(FIXTURE)
    orders, unreadable = readable_orders(FIXTURE, session)
    officines = {r["finess"] for r in read(FIXTURE, "pharmacies.csv")}
    pros = {r["rpps"]: r for r in read(FIXTURE, "professionals.csv")}
    refusals = Counter(outright_refusal(r, session, officines, pros) for r in orders)
    assert set(refusals) == {None, "window", "unknown_pharmacy", "eligibility", "unknown_professional", "not_attached"}
    assert len(unreadable) == 3
    valid = [r for r in orders if outright_refusal(r, session, officines, pros) is None]
    moderna = [int(r["vials"]) for r in valid if r["vaccine"] == "moderna"]
    assert sum(min(v, 10) for v in moderna) > session.vaccines["moderna"].supply_vials  # R7 supply
    assert any(v % 10 for v in moderna)  # R6 unit
    assert any(int(r["vials"]) > session.vaccines[r["vaccine"]].cap(r["effector"], r["injection"])
               for r in valid if r["effector"] != "infirmier")  # R4 cap
    nurses = Counter(p["finess"] for p in pros.values() if p["kind"] == "infirmier")
    assert any(r["effector"] == "infirmier" and not nurses[r["finess"]] for r in valid)  # R5: no nurse, no vials


# The generator.

def test_same_seed_and_sizes_give_the_same_bytes(tmp_path, small):
    generate_scenario(tmp_path, seed=7, pharmacies=300)
    for name in ("session.toml", *HEADERS):
        assert (tmp_path / name).read_bytes() == (small[0] / name).read_bytes(), name


def test_another_seed_gives_other_orders(tmp_path, small):
    generate_scenario(tmp_path, seed=8, pharmacies=300)
    assert (tmp_path / "orders.csv").read_bytes() != (small[0] / "orders.csv").read_bytes()


def test_headers_are_exactly_the_contracts(small):
    for name, header in HEADERS.items():
        with open(small[0] / name, encoding="utf-8") as f:
            assert f.readline() == header + "\n", name


def test_generated_session_validates_and_keeps_the_notices_caps(small):
    generated, fixture = session_of(small[0]), session_of(FIXTURE)
    assert {k: v.caps for k, v in generated.vaccines.items()} == {k: v.caps for k, v in fixture.vaccines.items()}
    assert generated.vaccines["moderna"].supply_vials == small[1]["supply_vials"]["moderna"]


def test_finess_are_nine_digits_prefixed_by_department_and_unique(small):
    officines = read(small[0], "pharmacies.csv")
    assert len(officines) == small[1]["pharmacies"] == 300
    assert len({r["finess"] for r in officines}) == len(officines)
    for r in officines:
        assert re.fullmatch(r"\d{9}", r["finess"]), r
        assert r["finess"].startswith({"2A": "20", "2B": "20"}.get(r["department"], r["department"])), r
        assert r["email"] == f"officine.{r['finess']}@pharma.example.fr"
    assert {"2A", "2B", "971", "974"} <= {r["department"] for r in officines}


def luhn_ok(number: str) -> bool:
    digits = [int(c) for c in reversed(number)]
    return sum(d if i % 2 == 0 else (2 * d - 9 if d > 4 else 2 * d) for i, d in enumerate(digits)) % 10 == 0


def test_rpps_are_eleven_digits_from_10_unique_with_their_check_digit(small):
    pros = read(small[0], "professionals.csv")
    assert len({r["rpps"] for r in pros}) == len(pros) == small[1]["professionals"]
    assert all(re.fullmatch(r"10\d{9}", r["rpps"]) and luhn_ok(r["rpps"]) for r in pros)
    assert all(r["email"].endswith("@sante.example.fr") for r in pros)
    assert len({r["email"] for r in pros}) == len(pros)


def test_r2_every_professional_is_attached_to_an_existing_officine(small):
    officines = {r["finess"] for r in read(small[0], "pharmacies.csv")}
    pros = read(small[0], "professionals.csv")
    assert {r["finess"] for r in pros} <= officines
    assert {r["kind"] for r in pros} == {"medecin", "medecin_travail", "sage_femme", "infirmier"}
    per_officine = Counter(r["finess"] for r in pros if r["kind"] != "medecin_travail")
    assert max(per_officine.values()) <= 10


def test_r8_every_officine_is_served_by_an_existing_depot_of_seven_wholesalers(small):
    depots = {r["depot_id"]: r for r in read(small[0], "depots.csv")}
    assert len(depots) == small[1]["depots"] == 185
    assert {r["depot_id"] for r in read(small[0], "pharmacies.csv")} <= set(depots)
    assert len({r["wholesaler"] for r in depots.values()}) == 7
    assert all(re.fullmatch(r"D-[A-Z]+-(\d\d|2A|2B|97\d)", d) for d in depots)
    assert all(int(r["capacity_vials"]) > 0 for r in depots.values())
    assert {r["weekdays"] for r in depots.values()} <= {"Mon-Fri", "Mon,Wed,Fri", "Mon-Sat"}
    days = read(small[0], "depot_days.csv")
    assert days and {r["depot_id"] for r in days} <= set(depots)
    assert any(r["capacity_vials"] == "0" for r in days)


def test_medecin_travail_count_scales_with_officines(tmp_path, small):
    assert small[1]["medecin_travail"] == round(5_000 * 300 / 20_500)
    assert generate_scenario(tmp_path, seed=7, pharmacies=1_200)["medecin_travail"] == round(5_000 * 1_200 / 20_500)


def test_order_ids_are_unique_and_bad_rows_are_exactly_the_unreadable_ones(small):
    rows = read(small[0], "orders.csv")
    orders, unreadable = readable_orders(small[0], session_of(small[0]))
    assert len(unreadable) == small[1]["bad_rows"] == 8
    assert len(orders) == small[1]["order_lines"]
    assert all(re.fullmatch(r"A-\d{7}", r["order_id"]) for r in rows)
    assert len({r["order_id"] for r in rows}) == len(rows) - 1  # one row repeats an earlier order_id


def test_r1_submitted_at_carries_an_offset_and_milliseconds_and_a_few_fall_outside_the_window(small):
    session = session_of(small[0])
    orders, _ = readable_orders(small[0], session)
    assert all(STAMP.fullmatch(r["submitted_at"]) for r in orders)
    assert Counter(r["submitted_at"][-6:] for r in orders).most_common(1)[0][0] == "+02:00"
    inside = sum(session.opens <= dt.datetime.fromisoformat(r["submitted_at"]) < session.closes for r in orders)
    assert 0.97 * len(orders) < inside < len(orders)


def test_r2_r3_generated_orders_carry_every_outright_refusal_but_mostly_valid_lines(small):
    session = session_of(small[0])
    orders, _ = readable_orders(small[0], session)
    officines = {r["finess"] for r in read(small[0], "pharmacies.csv")}
    pros = {r["rpps"]: r for r in read(small[0], "professionals.csv")}
    refusals = Counter(outright_refusal(r, session, officines, pros) for r in orders)
    assert set(refusals) == {None, "window", "unknown_pharmacy", "eligibility", "unknown_professional", "not_attached"}
    assert refusals[None] > 0.95 * len(orders)


def test_r7_moderna_is_one_box_per_medecin_du_travail_and_at_least_twice_the_supply(small):
    session = session_of(small[0])
    orders, _ = readable_orders(small[0], session)
    moderna = [int(r["vials"]) for r in orders if r["vaccine"] == "moderna" and r["effector"] == "medecin_travail"]
    assert Counter(moderna).most_common(1)[0][0] == 10
    supply = session.vaccines["moderna"].supply_vials
    assert supply % 10 == 0
    assert 2 * supply <= sum(moderna) <= 3.5 * supply


def test_default_size_is_national(tmp_path):
    counts = generate_scenario(tmp_path)
    assert counts["pharmacies"] == 20_500 and counts["depots"] == 185
    assert 4_900 <= counts["medecin_travail"] <= 5_100
    assert counts["order_lines"] >= 100_000
