"""The allocation core (R1–R7, R12 zone) on hand-built frames, with properties against a literal reference."""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import pipeline.domain
from pipeline.domain.allocate import ALLOCATION_COLUMNS, OUTRIGHT, allocate
from pipeline.domain.rules import INJECTIONS, KINDS, NAMED_KINDS, PROFESSIONAL_KINDS
from tests.reference import reference_allocate
from tests.conftest import OPENS, by_order, orders, pharmacies, professionals, session, vaccine

OFFICINE, OTHER, OUTSIDE, CORSICA, UNKNOWN_FINESS = "010000001", "010000002", "130000003", "2A0000004", "099999999"
DOCTOR, DOCTOR_2, DOCTOR_ELSEWHERE = "10000000001", "10000000002", "10000000003"
MIDWIFE, MIDWIFE_ELSEWHERE = "10000000004", "10000000005"
OCCUPATIONAL, OCCUPATIONAL_ELSEWHERE = "10000000006", "10000000007"
NURSE_1, NURSE_2, NURSE_ELSEWHERE = "10000000008", "10000000009", "10000000010"
UNKNOWN_RPPS = "10999999999"

PHARMACIES = pharmacies((OFFICINE, "01"), (OTHER, "01"), (OUTSIDE, "13"), (CORSICA, "2A"))
PROFESSIONALS = professionals(
    (DOCTOR, "medecin", OFFICINE), (DOCTOR_2, "medecin", OFFICINE), (DOCTOR_ELSEWHERE, "medecin", OTHER),
    (MIDWIFE, "sage_femme", OFFICINE), (MIDWIFE_ELSEWHERE, "sage_femme", OTHER),
    (OCCUPATIONAL, "medecin_travail", OFFICINE), (OCCUPATIONAL_ELSEWHERE, "medecin_travail", OTHER),
    (NURSE_1, "infirmier", OFFICINE), (NURSE_2, "infirmier", OFFICINE), (NURSE_ELSEWHERE, "infirmier", OTHER),
)

# The notice's week of 14 June (R3, R4, R6).
MODERNA = vaccine({"medecin_travail": {"first": 10}}, box=10, allocation="fcfs", remainders=False)
JANSSEN = vaccine({kind: {"first": 10} for kind in ("medecin", "pharmacien", "infirmier", "sage_femme")})
ASTRAZENECA = vaccine({"medecin": {"first": 5, "second": 5}, "pharmacien": {"first": 5, "second": 5},
                       "infirmier": {"first": 10}, "sage_femme": {"first": 10}})
NOTICE = session(moderna=MODERNA, janssen=JANSSEN, astrazeneca=ASTRAZENECA)


def decide(rules, *lines, cancelled=(), supply=None):
    """Each line's (allocated, status, reason) by order id (A-001, A-002... in list order),
    against the registers above."""
    return dict(sorted(by_order(allocate(rules, orders(*lines), PHARMACIES, PROFESSIONALS, cancelled, supply)).items()))


def allocated(decisions):
    return [value[0] for value in decisions.values()]


# R1 Ordering window

def test_r1_line_at_opens_at_is_accepted():
    assert decide(NOTICE, {"submitted_at": "2021-06-14T08:00:00+02:00"})["A-001"] == (1, "served", "ok")


def test_r1_line_before_opens_at_is_refused_window():
    assert decide(NOTICE, {"submitted_at": "2021-06-14T07:59:59.999+02:00"})["A-001"] == (0, "refused", "window")


def test_r1_line_at_closes_at_is_refused_window():
    decisions = decide(NOTICE, {"submitted_at": "2021-06-15T22:59:59.999999+02:00"},
                       {"submitted_at": "2021-06-15T23:00:00+02:00"},
                       {"submitted_at": "2021-06-16T09:00:00+02:00"})
    assert list(decisions.values()) == [(1, "served", "ok"), (0, "refused", "window"), (0, "refused", "window")]


def test_r1_offsets_are_compared_as_instants():
    decisions = decide(NOTICE,
                       {"submitted_at": "2021-06-14T06:00:00+00:00"},   # 08:00 in Paris: open
                       {"submitted_at": "2021-06-14T07:30:00+01:00"},   # 08:30 in Paris: open
                       {"submitted_at": "2021-06-14T07:30:00+02:00"},   # 07:30 in Paris: not yet
                       {"submitted_at": "2021-06-15T22:30:00+01:00"},   # 23:30 in Paris: closed
                       {"submitted_at": "2021-06-15T22:30:00+02:00"})   # 22:30 in Paris: open
    assert [reason for _, _, reason in decisions.values()] == ["ok", "ok", "window", "window", "ok"]


def test_r1_submitted_at_in_another_time_zone_gives_the_same_decisions():
    lines = orders({"submitted_at": "2021-06-14T07:59:00+02:00"}, {"submitted_at": "2021-06-15T22:59:00+02:00"},
                   {"submitted_at": "2021-06-15T23:00:00+02:00"})
    paris = lines.assign(submitted_at=lines["submitted_at"].dt.tz_convert("Europe/Paris"))
    assert by_order(allocate(NOTICE, paris, PHARMACIES, PROFESSIONALS)) == \
        by_order(allocate(NOTICE, lines, PHARMACIES, PROFESSIONALS))


# R2 Who orders for whom

def test_r2_officine_orders_for_itself_without_rpps():
    assert decide(NOTICE, {"effector": "pharmacien", "rpps": "", "vials": 4})["A-001"] == (4, "served", "ok")


def test_r2_nurse_pool_line_needs_no_rpps():
    assert decide(NOTICE, {"effector": "infirmier", "rpps": "", "vials": 12})["A-001"] == (12, "served", "ok")


@pytest.mark.parametrize("effector, rpps, vaccine_key", [
    ("medecin", DOCTOR, "janssen"), ("sage_femme", MIDWIFE, "janssen"), ("medecin_travail", OCCUPATIONAL, "moderna")])
def test_r2_professional_attached_to_the_officine_is_served(effector, rpps, vaccine_key):
    line = {"effector": effector, "rpps": rpps, "vaccine": vaccine_key, "vials": 10}
    assert decide(NOTICE, line)["A-001"] == (10, "served", "ok")


@pytest.mark.parametrize("effector, rpps, vaccine_key", [
    ("medecin", DOCTOR_ELSEWHERE, "janssen"), ("sage_femme", MIDWIFE_ELSEWHERE, "janssen"),
    ("medecin_travail", OCCUPATIONAL_ELSEWHERE, "moderna")])
def test_r2_doctor_attached_elsewhere_is_not_attached(effector, rpps, vaccine_key):
    line = {"effector": effector, "rpps": rpps, "vaccine": vaccine_key, "vials": 10}
    assert decide(NOTICE, line)["A-001"] == (0, "refused", "not_attached")


@pytest.mark.parametrize("rpps", ["", UNKNOWN_RPPS])
def test_r2_named_line_with_missing_or_unregistered_rpps_is_unknown_professional(rpps):
    assert decide(NOTICE, {"effector": "medecin", "rpps": rpps})["A-001"] == (0, "refused", "unknown_professional")


@pytest.mark.parametrize("effector, rpps", [("medecin", MIDWIFE), ("sage_femme", DOCTOR), ("medecin", NURSE_1),
                                            ("medecin", OCCUPATIONAL)])
def test_r2_professional_registered_as_another_kind_is_unknown(effector, rpps):
    assert decide(NOTICE, {"effector": effector, "rpps": rpps})["A-001"] == (0, "refused", "unknown_professional")


def test_r2_unknown_officine_is_refused_unknown_pharmacy():
    assert decide(NOTICE, {"finess": UNKNOWN_FINESS})["A-001"] == (0, "refused", "unknown_pharmacy")


# R3 Eligibility per vaccine

@pytest.mark.parametrize("effector, rpps, reason", [
    ("medecin_travail", OCCUPATIONAL, "ok"), ("medecin", DOCTOR, "eligibility"), ("pharmacien", "", "eligibility"),
    ("infirmier", "", "eligibility"), ("sage_femme", MIDWIFE, "eligibility")])
def test_r3_moderna_eligibility_is_only_for_occupational_doctors(effector, rpps, reason):
    line = {"effector": effector, "rpps": rpps, "vaccine": "moderna", "vials": 10}
    assert decide(NOTICE, line)["A-001"][2] == reason


def test_r3_occupational_doctor_is_not_eligible_for_janssen_or_astrazeneca():
    decisions = decide(NOTICE, {"effector": "medecin_travail", "rpps": OCCUPATIONAL, "vaccine": "janssen"},
                       {"effector": "medecin_travail", "rpps": OCCUPATIONAL, "vaccine": "astrazeneca"})
    assert list(decisions.values()) == [(0, "refused", "eligibility")] * 2


def test_r3_injection_absent_from_a_kinds_caps_fails_eligibility():
    decisions = decide(NOTICE, {"effector": "infirmier", "vaccine": "astrazeneca", "injection": "second"},
                       {"effector": "sage_femme", "rpps": MIDWIFE, "vaccine": "astrazeneca", "injection": "second"},
                       {"effector": "pharmacien", "vaccine": "astrazeneca", "injection": "second"},
                       {"effector": "pharmacien", "vaccine": "janssen", "injection": "second"})
    assert [reason for _, _, reason in decisions.values()] == ["eligibility", "eligibility", "ok", "eligibility"]


def test_r3_vaccine_not_in_the_session_fails_eligibility():
    assert decide(NOTICE, {"vaccine": "sputnik"})["A-001"] == (0, "refused", "eligibility")


# R4 Caps per beneficiary

def test_r4_second_doctor_line_only_gets_what_is_left_of_the_cap():
    doctor = {"effector": "medecin", "rpps": DOCTOR, "vaccine": "astrazeneca"}
    decisions = decide(NOTICE, doctor | {"vials": 3}, doctor | {"vials": 4}, doctor | {"vials": 1})
    assert list(decisions.values()) == [(3, "served", "ok"), (2, "partial", "cap"), (0, "refused", "cap")]


def test_r4_a_line_above_the_cap_is_cut_to_the_cap():
    assert decide(NOTICE, {"vials": 25})["A-001"] == (10, "partial", "cap")


def test_r4_cap_is_consumed_in_submission_order_not_row_order():
    lines = orders({"order_id": "A-late", "submitted_at": "2021-06-14T12:00:00+02:00", "vials": 6},
                   {"order_id": "A-early", "submitted_at": "2021-06-14T09:00:00+02:00", "vials": 6})
    decisions = by_order(allocate(NOTICE, lines, PHARMACIES, PROFESSIONALS))
    assert decisions == {"A-early": (6, "served", "ok"), "A-late": (4, "partial", "cap")}


def test_r4_caps_are_per_beneficiary_vaccine_and_injection():
    decisions = decide(
        NOTICE,
        {"effector": "medecin", "rpps": DOCTOR, "vaccine": "astrazeneca", "injection": "first", "vials": 5},
        {"effector": "medecin", "rpps": DOCTOR, "vaccine": "astrazeneca", "injection": "second", "vials": 5},
        {"effector": "medecin", "rpps": DOCTOR, "vaccine": "janssen", "vials": 10},
        {"effector": "medecin", "rpps": DOCTOR_2, "vaccine": "astrazeneca", "vials": 5},
        {"effector": "pharmacien", "vaccine": "astrazeneca", "vials": 5},
        {"effector": "infirmier", "vaccine": "astrazeneca", "vials": 20},
        {"effector": "sage_femme", "rpps": MIDWIFE, "vaccine": "astrazeneca", "vials": 10},
        {"finess": OTHER, "effector": "pharmacien", "vaccine": "astrazeneca", "vials": 5})
    assert set(decisions.values()) == {(5, "served", "ok"), (10, "served", "ok"), (20, "served", "ok")}


def test_r4_cap_is_for_the_whole_session_across_days():
    decisions = decide(NOTICE, {"submitted_at": "2021-06-14T09:00:00+02:00", "vials": 10},
                       {"submitted_at": "2021-06-15T09:00:00+02:00", "vials": 10})
    assert list(decisions.values()) == [(10, "served", "ok"), (0, "refused", "cap")]


def test_r4_line_refused_for_supply_still_used_its_cap():
    # fcfs_fill: the officine's 10 do not fit in the 6 left, its later 5 would fit, but the cap is used.
    rules = session(janssen=vaccine(supply=6, allocation="fcfs_fill"))
    decisions = decide(rules, {"vials": 10}, {"vials": 5}, {"finess": OTHER, "vials": 5})
    assert list(decisions.values()) == [(0, "refused", "supply"), (0, "refused", "cap"), (5, "served", "ok")]


def test_r4_line_refused_outright_does_not_use_the_cap():
    too_early = decide(NOTICE, {"submitted_at": "2021-06-14T07:00:00+02:00", "vials": 10}, {"vials": 10})
    cancelled = decide(NOTICE, {"vials": 10}, {"vials": 10}, cancelled=["A-001"])
    assert list(too_early.values()) == [(0, "refused", "window"), (10, "served", "ok")]
    assert list(cancelled.values()) == [(0, "refused", "cancelled"), (10, "served", "ok")]


# R5 Nurse pool

def test_r5_nurse_pool_cap_is_the_per_nurse_cap_times_attached_nurses():
    decisions = decide(NOTICE, {"effector": "infirmier", "vials": 15}, {"effector": "infirmier", "vials": 15})
    assert list(decisions.values()) == [(15, "served", "ok"), (5, "partial", "cap")]


def test_r5_officine_without_nurse_gets_cap():
    decisions = decide(NOTICE, {"finess": CORSICA, "effector": "infirmier", "vials": 1})
    assert decisions["A-001"] == (0, "refused", "cap")


def test_r5_only_nurses_attached_to_the_officine_count():
    decisions = decide(NOTICE, {"finess": OTHER, "effector": "infirmier", "vials": 15})
    assert decisions["A-001"] == (10, "partial", "cap")


# R6 Units

def test_r6_moderna_rounds_down_to_whole_boxes():
    rules = session(moderna=vaccine({"medecin_travail": {"first": 30}}, box=10, remainders=False))
    line = {"effector": "medecin_travail", "rpps": OCCUPATIONAL, "vaccine": "moderna"}
    decisions = decide(rules, line | {"vials": 25}, line | {"vials": 30})
    assert list(decisions.values()) == [(20, "partial", "unit"), (10, "partial", "cap")]


def test_r6_line_rounding_to_zero_is_refused_unit():
    line = {"effector": "medecin_travail", "rpps": OCCUPATIONAL, "vaccine": "moderna", "vials": 7}
    assert decide(NOTICE, line)["A-001"] == (0, "refused", "unit")


def test_r6_rounding_after_the_cap_names_unit_as_the_last_reducer():
    rules = session(moderna=vaccine({"medecin_travail": {"first": 15}}, box=10))
    line = {"effector": "medecin_travail", "rpps": OCCUPATIONAL, "vaccine": "moderna"}
    decisions = decide(rules, line | {"vials": 20}, line | {"vials": 10})
    # 20 is cut to 15 by the cap then to 10 by the box; the 5 left of the cap round to nothing.
    assert list(decisions.values()) == [(10, "partial", "unit"), (0, "refused", "unit")]


def test_r6_vials_rounded_away_do_not_use_the_cap():
    line = {"effector": "medecin_travail", "rpps": OCCUPATIONAL, "vaccine": "moderna"}
    decisions = decide(NOTICE, line | {"vials": 5}, line | {"vials": 10})
    assert list(decisions.values()) == [(0, "refused", "unit"), (10, "served", "ok")]


def test_r6_supply_is_shared_in_whole_boxes():
    rules = session(moderna=vaccine({"medecin_travail": {"first": 30}}, box=10, supply=25, remainders=True))
    line = {"effector": "medecin_travail", "vaccine": "moderna"}
    assert decide(rules, line | {"rpps": OCCUPATIONAL, "vials": 30})["A-001"] == (20, "partial", "supply")
    decisions = decide(rules, line | {"rpps": OCCUPATIONAL, "vials": 10},
                       line | {"rpps": OCCUPATIONAL_ELSEWHERE, "finess": OTHER, "vials": 30})
    assert list(decisions.values()) == [(10, "served", "ok"), (10, "partial", "supply")]


# R7 Supply and first come, first served

FOUR_LINES = [{"finess": finess, "vials": vials}
              for finess, vials in [(OFFICINE, 4), (OTHER, 4), (OUTSIDE, 4), (CORSICA, 1)]]


def test_r7_fcfs_without_remainders_sells_out_after_first_miss():
    rules = session(janssen=vaccine(supply=10, allocation="fcfs", remainders=False))
    assert list(decide(rules, *FOUR_LINES).values()) == [
        (4, "served", "ok"), (4, "served", "ok"), (0, "refused", "supply"), (0, "refused", "supply")]


def test_r7_fcfs_without_remainders_serves_exactly_fitting_lines():
    rules = session(janssen=vaccine(supply=8, allocation="fcfs", remainders=False))
    assert allocated(decide(rules, *FOUR_LINES)) == [4, 4, 0, 0]


def test_r7_fcfs_with_remainders_gives_the_crossing_line_what_is_left():
    rules = session(janssen=vaccine(supply=10, allocation="fcfs", remainders=True))
    assert list(decide(rules, *FOUR_LINES).values()) == [
        (4, "served", "ok"), (4, "served", "ok"), (2, "partial", "supply"), (0, "refused", "supply")]


def test_r7_fcfs_fill_lets_a_later_smaller_line_in():
    rules = session(janssen=vaccine(supply=10, allocation="fcfs_fill"))
    decisions = decide(rules, *FOUR_LINES, {"finess": OTHER, "vials": 2}, {"finess": OTHER, "vials": 1})
    assert list(decisions.values()) == [(4, "served", "ok"), (4, "served", "ok"), (0, "refused", "supply"),
                                        (1, "served", "ok"), (0, "refused", "supply"), (1, "served", "ok")]


def test_r7_pro_rata_gives_largest_remainders_in_submission_order():
    # Shares of 6 among 5, 3, 2, 2: 2.5, 1.5, 1, 1; the one unit left goes to the earlier of the
    # two 0.5 remainders, which is the 3-vial line, submitted first though listed last.
    rules = session(janssen=vaccine(supply=6, allocation="pro_rata"))
    lines = orders({"order_id": "A-1", "finess": OFFICINE, "vials": 5, "submitted_at": "2021-06-14T10:00:00+02:00"},
                   {"order_id": "A-2", "finess": OTHER, "vials": 2, "submitted_at": "2021-06-14T10:01:00+02:00"},
                   {"order_id": "A-3", "finess": OUTSIDE, "vials": 2, "submitted_at": "2021-06-14T10:02:00+02:00"},
                   {"order_id": "A-4", "finess": CORSICA, "vials": 3, "submitted_at": "2021-06-14T09:00:00+02:00"})
    decisions = by_order(allocate(rules, lines, PHARMACIES, PROFESSIONALS))
    assert decisions == {"A-4": (2, "partial", "supply"), "A-1": (2, "partial", "supply"),
                         "A-2": (1, "partial", "supply"), "A-3": (1, "partial", "supply")}


def test_r7_pro_rata_gives_the_units_left_to_the_largest_remainders_first():
    # Shares of 10 among 6, 7, 7: 3, 3.5, 3.5; floors 3, 3, 3 and the unit left to the first 0.5,
    # not to the first line.
    rules = session(janssen=vaccine(supply=10, allocation="pro_rata"))
    decisions = decide(rules, {"vials": 6, "finess": OFFICINE}, {"vials": 7, "finess": OTHER},
                       {"vials": 7, "finess": OUTSIDE})
    assert allocated(decisions) == [3, 4, 3]


def test_r7_pro_rata_shares_the_capped_requests_in_whole_boxes():
    rules = session(moderna=vaccine({"medecin_travail": {"first": 30}}, box=10, supply=40, allocation="pro_rata"))
    line = {"effector": "medecin_travail", "vaccine": "moderna"}
    decisions = decide(rules, line | {"rpps": OCCUPATIONAL, "vials": 90},
                       line | {"rpps": OCCUPATIONAL_ELSEWHERE, "finess": OTHER, "vials": 30})
    # Both capped to 3 boxes; 4 boxes shared 2 and 2.
    assert list(decisions.values()) == [(20, "partial", "supply"), (20, "partial", "supply")]


def test_r7_pro_rata_within_supply_serves_every_capped_line():
    rules = session(janssen=vaccine(supply=13, allocation="pro_rata"))
    assert allocated(decide(rules, *FOUR_LINES)) == [4, 4, 4, 1]


@pytest.mark.parametrize("allocation, remainders", [("fcfs", False), ("fcfs", True), ("fcfs_fill", False),
                                                    ("pro_rata", True)])
def test_r7_no_supply_serves_every_capped_line(allocation, remainders):
    rules = session(janssen=vaccine(allocation=allocation, remainders=remainders))
    decisions = decide(rules, *FOUR_LINES * 3)
    assert allocated(decisions) == [4, 4, 4, 1, 4, 4, 4, 1, 2, 2, 2, 1]


@pytest.mark.parametrize("allocation, remainders", [("fcfs", False), ("fcfs", True), ("fcfs_fill", False),
                                                    ("pro_rata", True)])
def test_r7_zero_supply_refuses_every_capped_line_for_supply(allocation, remainders):
    rules = session(janssen=vaccine(supply=0, allocation=allocation, remainders=remainders))
    decisions = decide(rules, *FOUR_LINES, {"vials": 20})
    assert list(decisions.values()) == [(0, "refused", "supply")] * 5


def test_r7_ties_in_submitted_at_are_served_in_order_id_order():
    rules = session(janssen=vaccine(supply=4, allocation="fcfs", remainders=False))
    lines = orders({"order_id": "A-2", "finess": OTHER, "vials": 4, "submitted_at": "2021-06-14T10:00:00+02:00"},
                   {"order_id": "A-1", "finess": OFFICINE, "vials": 4, "submitted_at": "2021-06-14T08:00:00+00:00"})
    assert by_order(allocate(rules, lines, PHARMACIES, PROFESSIONALS)) == {
        "A-1": (4, "served", "ok"), "A-2": (0, "refused", "supply")}


def test_r7_supply_is_counted_per_vaccine():
    rules = session(janssen=vaccine(supply=4, remainders=False), astrazeneca=vaccine(supply=4, remainders=False))
    decisions = decide(rules, {"vials": 4}, {"vials": 4, "vaccine": "astrazeneca"}, {"finess": OTHER, "vials": 1})
    assert allocated(decisions) == [4, 4, 0]


def test_r7_lines_refused_outright_or_for_cap_use_no_supply():
    caps = {"pharmacien": {"first": 10}, "infirmier": {"first": 10}}
    rules = session(janssen=vaccine(caps, supply=5, allocation="fcfs", remainders=False))
    decisions = decide(rules, {"vials": 5, "finess": UNKNOWN_FINESS},
                       {"vials": 5, "finess": CORSICA, "effector": "infirmier"}, {"vials": 5})
    assert list(decisions.values()) == [(0, "refused", "unknown_pharmacy"), (0, "refused", "cap"),
                                        (5, "served", "ok")]


# R12 Zone

def test_r12_officine_outside_territorial_zone_is_refused_zone():
    rules = session(zone=("01", "2A"), janssen=JANSSEN)
    decisions = decide(rules, {"finess": OFFICINE}, {"finess": OUTSIDE}, {"finess": CORSICA})
    assert [reason for _, _, reason in decisions.values()] == ["ok", "zone", "ok"]


def test_r12_national_session_accepts_every_department():
    decisions = decide(NOTICE, {"finess": OFFICINE}, {"finess": OUTSIDE}, {"finess": CORSICA})
    assert [reason for _, _, reason in decisions.values()] == ["ok", "ok", "ok"]


# Outright refusals, status and reasons (CONTRACT.md)

FAILURES = {  # how a line, otherwise fine, fails each outright check
    "cancelled": {},
    "window": {"submitted_at": "2021-06-14T07:59:00+02:00"},
    "unknown_pharmacy": {"finess": UNKNOWN_FINESS},
    "zone": {"finess": OUTSIDE},
    "eligibility": {"vaccine": "moderna"},
    "unknown_professional": {"rpps": UNKNOWN_RPPS},
    "not_attached": {"rpps": DOCTOR_ELSEWHERE},
}


def test_outright_refusal_is_the_first_failing_check_in_contract_order():
    assert tuple(FAILURES) == OUTRIGHT == ("cancelled", "window", "unknown_pharmacy", "zone", "eligibility",
                                           "unknown_professional", "not_attached")
    rules = session(zone=("01",), moderna=MODERNA, janssen=JANSSEN)
    lines, expected, cancelled = [], {}, []
    for size in range(1, len(FAILURES) + 1):
        for failing in itertools.combinations(FAILURES, size):
            order_id = "A-" + "+".join(failing)
            line = {"order_id": order_id, "effector": "medecin", "rpps": DOCTOR, "vaccine": "janssen"}
            for check in reversed(failing):  # the earlier check's change wins where two touch one field
                line |= FAILURES[check]
            if "cancelled" in failing:
                cancelled.append(order_id)
            lines.append(line)
            expected[order_id] = (0, "refused", failing[0])
    lines.append({"order_id": "A-fine", "effector": "medecin", "rpps": DOCTOR, "vaccine": "janssen"})
    expected["A-fine"] = (1, "served", "ok")
    assert by_order(allocate(rules, orders(*lines), PHARMACIES, PROFESSIONALS, cancelled)) == expected


def test_status_follows_allocated_against_requested():
    decisions = decide(NOTICE, {"vials": 4}, {"vials": 8}, {"vials": 3}, {"finess": UNKNOWN_FINESS})
    assert [status for _, status, _ in decisions.values()] == ["served", "partial", "refused", "refused"]


def test_reason_is_the_last_reducer_cap_then_supply_is_refused_supply():
    rules = session(janssen=vaccine(supply=12, allocation="fcfs", remainders=True))
    decisions = decide(rules, {"finess": OTHER, "vials": 10}, {"vials": 15}, {"finess": OUTSIDE, "vials": 15})
    assert list(decisions.values()) == [(10, "served", "ok"), (2, "partial", "supply"), (0, "refused", "supply")]


def test_reason_is_the_last_reducer_cap_then_unit_then_supply_is_supply():
    rules = session(moderna=vaccine({"medecin_travail": {"first": 25}}, box=10, supply=10, remainders=True))
    line = {"effector": "medecin_travail", "vaccine": "moderna", "vials": 30}
    decisions = decide(rules, line | {"rpps": OCCUPATIONAL}, line | {"rpps": OCCUPATIONAL_ELSEWHERE, "finess": OTHER})
    assert list(decisions.values()) == [(10, "partial", "supply"), (0, "refused", "supply")]


def test_capped_column_is_what_the_line_keeps_before_supply():
    rules = session(janssen=vaccine(supply=3, allocation="fcfs", remainders=True))
    decisions = allocate(rules, orders({"vials": 15}, {"vials": 2, "finess": OTHER}), PHARMACIES, PROFESSIONALS)
    assert decisions.set_index("order_id")["capped"].to_dict() == {"A-001": 10, "A-002": 2}


# Arguments of a reallocation (R11): cancelled lines and supply override

def test_cancelled_lines_are_refused_and_free_the_supply_for_later_lines():
    rules = session(janssen=vaccine(supply=4, allocation="fcfs", remainders=False))
    lines = [{"vials": 4}, {"finess": OTHER, "vials": 4}]
    assert list(decide(rules, *lines).values()) == [(4, "served", "ok"), (0, "refused", "supply")]
    assert list(decide(rules, *lines, cancelled=["A-001"]).values()) == [
        (0, "refused", "cancelled"), (4, "served", "ok")]


def test_cancelled_accepts_any_iterable_of_order_ids():
    decisions = decide(NOTICE, {"vials": 1}, {"vials": 1}, {"vials": 1}, cancelled=iter({"A-002": 1, "A-404": 2}))
    assert [reason for _, _, reason in decisions.values()] == ["ok", "cancelled", "ok"]


def test_supply_argument_overrides_the_session_supply():
    rules = session(janssen=vaccine(supply=4, allocation="fcfs", remainders=False), astrazeneca=vaccine())
    lines = [{"vials": 4}, {"finess": OTHER, "vials": 4},
             {"vaccine": "astrazeneca", "vials": 5}, {"vaccine": "astrazeneca", "finess": OTHER, "vials": 5}]
    assert allocated(decide(rules, *lines)) == [4, 0, 5, 5]
    assert allocated(decide(rules, *lines, supply={"janssen": 8})) == [4, 4, 5, 5]
    assert allocated(decide(rules, *lines, supply={"janssen": 3})) == [0, 0, 5, 5]
    assert allocated(decide(rules, *lines, supply={"astrazeneca": 7})) == [4, 0, 5, 2]
    assert allocated(decide(rules, *lines, supply={})) == [4, 0, 5, 5]


# The shape of the result

def test_output_has_the_contract_columns_sorted_by_officine_then_submission_order():
    lines = orders({"finess": OTHER}, {"finess": OFFICINE, "submitted_at": "2021-06-14T12:00:00+02:00"},
                   {"finess": OFFICINE, "submitted_at": "2021-06-14T09:00:00+02:00"})
    decisions = allocate(NOTICE, lines, PHARMACIES, PROFESSIONALS)
    assert list(decisions.columns[:len(ALLOCATION_COLUMNS)]) == ALLOCATION_COLUMNS
    assert decisions["order_id"].tolist() == ["A-003", "A-002", "A-001"]
    assert decisions["rank"].tolist() == [1, 2, 0]
    assert decisions.index.tolist() == [0, 1, 2]


def test_allocate_does_not_mutate_its_inputs():
    lines = orders({"vials": 15}, {"effector": "medecin", "rpps": DOCTOR}, {"finess": UNKNOWN_FINESS})
    before = [frame.copy(deep=True) for frame in (lines, PHARMACIES, PROFESSIONALS)]
    allocate(NOTICE, lines, PHARMACIES, PROFESSIONALS, ["A-002"], {"janssen": 1})
    for frame, copy in zip((lines, PHARMACIES, PROFESSIONALS), before):
        pd.testing.assert_frame_equal(frame, copy)


def test_no_orders_give_no_decisions():
    decisions = allocate(NOTICE, orders(), PHARMACIES, PROFESSIONALS, supply={"moderna": 0})
    assert len(decisions) == 0 and list(decisions.columns[:len(ALLOCATION_COLUMNS)]) == ALLOCATION_COLUMNS


# Properties on random small scenarios, against a literal per-line reference

POLICIES = [("fcfs", False), ("fcfs", True), ("fcfs_fill", False), ("pro_rata", True)]
FINESS_POOL = ["010000001", "020000002", "2A0000003"]
RPPS_POOL = [f"1000000000{i}" for i in range(6)]
# Ties are frequent on purpose; closes_at is 2220 minutes after opens_at.
INSTANTS = [OPENS + pd.Timedelta(minutes=m) for m in (5, 5, 0, 0, 1, 1, 5, 60, 60, 600, 2219, 2219, -1, 2220, 2221)]
DEPARTMENTS = ["01", "2A", "13"]


def sometimes(draw, usual, odd, one_in: int = 8):
    """`usual` most of the time, `odd` about once in `one_in` draws (hypothesis favours the
    bounds of a range, so the odd case sits in its middle)."""
    return odd if draw(st.integers(1, one_in)) == one_in // 2 else usual


def _vaccine(draw, policy):
    allocation, remainders = policy if policy else draw(st.sampled_from(POLICIES))
    caps = {}
    for kind in KINDS:  # a cap of -1: the injection is not open to the kind
        opened = {injection: cap for injection in INJECTIONS if (cap := draw(st.integers(-1, 20))) >= 0}
        if opened:
            caps[kind] = opened
    return vaccine(caps, box=draw(st.sampled_from([1, 1, 1, 2, 5, 10])), allocation=allocation,
                   remainders=remainders, supply=draw(st.integers(0, 40) | st.none()))


@st.composite
def scenarios(draw, policy=None):
    """(session, orders, pharmacies, professionals, cancelled, supply) for a small random session.

    Most lines are plausible (a known officine, a professional ordered through their officine)
    so that caps, units and supply get exercised; about one in eight fails each outright check.
    """
    national = draw(st.integers(1, 3)) > 1
    rules = session(zone="national" if national else tuple(draw(st.lists(st.sampled_from(DEPARTMENTS), unique=True))),
                    a=_vaccine(draw, policy), b=_vaccine(draw, None))
    officines = pharmacies(*[(finess, draw(st.sampled_from(DEPARTMENTS))) for finess in FINESS_POOL])
    registered = [(rpps, draw(st.sampled_from(PROFESSIONAL_KINDS)),
                   sometimes(draw, draw(st.sampled_from(FINESS_POOL)), UNKNOWN_FINESS)) for rpps in RPPS_POOL]
    size = draw(st.integers(0, 30))
    lines = []
    for number in draw(st.permutations(range(size))):
        effector = draw(st.sampled_from(KINDS))
        finess, rpps = draw(st.sampled_from(FINESS_POOL)), ""
        if effector in NAMED_KINDS:
            its_rpps, its_kind, its_finess = draw(st.sampled_from(registered))
            effector = sometimes(draw, its_kind if its_kind in NAMED_KINDS else effector, effector)
            finess = sometimes(draw, its_finess, finess)
            rpps = sometimes(draw, its_rpps, draw(st.sampled_from(["", UNKNOWN_RPPS])))
        lines.append({
            "order_id": f"A-{number:03d}",
            "submitted_at": draw(st.sampled_from(INSTANTS)),
            "finess": sometimes(draw, finess, UNKNOWN_FINESS, 12),
            "effector": effector,
            "rpps": rpps,
            "vaccine": sometimes(draw, draw(st.sampled_from(["a", "a", "b"])), "zz", 12),
            "injection": draw(st.sampled_from(INJECTIONS)),
            "vials": draw(st.integers(1, 15)),
        })
    frame = orders(*lines)
    cancelled = draw(st.lists(st.sampled_from(frame["order_id"].tolist()), max_size=2)) if size else []
    supply = draw(st.none() | st.dictionaries(st.sampled_from(["a", "b"]), st.integers(0, 40), max_size=2))
    return rules, frame, officines, professionals(*registered), cancelled, supply


# Sized so that the whole file runs in well under a minute; the reference comparison gets the most.
PROPERTY = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
REFERENCE = settings(PROPERTY, max_examples=100)


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: f"{p[0]}-remainders={p[1]}" if isinstance(p, tuple) else p)
@REFERENCE
@given(data=st.data())
def test_r1_to_r7_vectorised_core_equals_the_literal_per_line_reference(policy, data):
    scenario = data.draw(scenarios(policy))
    decisions = allocate(*scenario)
    got = {row.order_id: (row.requested, row.allocated, row.status, row.reason, row.capped)
           for row in decisions.itertuples()}
    assert got == reference_allocate(*scenario)


@PROPERTY
@given(scenarios())
def test_allocated_never_exceeds_capped_nor_capped_requested(scenario):
    decisions = allocate(*scenario)
    assert ((0 <= decisions["allocated"]) & (decisions["allocated"] <= decisions["capped"])
            & (decisions["capped"] <= decisions["requested"])).all()


def _beneficiary_caps(rules, decisions, register):
    nurses = register.loc[register["kind"] == "infirmier", "finess"].value_counts()
    for row in decisions.itertuples():
        cap = rules.vaccines[row.vaccine].cap(row.effector, row.injection) if row.vaccine in rules.vaccines else None
        if cap is not None and row.effector == "infirmier":
            cap *= int(nurses.get(row.finess, 0))
        named = row.effector in NAMED_KINDS
        beneficiary = (row.rpps if named else row.finess, row.effector, row.vaccine, row.injection)
        yield beneficiary, cap, row.allocated


@PROPERTY
@given(scenarios())
def test_r4_per_beneficiary_caps_are_never_exceeded(scenario):
    rules, _, _, register, _, _ = scenario
    decisions = allocate(*scenario)
    total, caps = defaultdict(int), {}
    for beneficiary, cap, allocated in _beneficiary_caps(rules, decisions, register):
        total[beneficiary] += allocated
        caps[beneficiary] = cap
    assert all(allocated == 0 or allocated <= caps[beneficiary] for beneficiary, allocated in total.items())


@PROPERTY
@given(scenarios())
def test_r7_per_vaccine_supply_is_never_exceeded(scenario):
    rules, _, _, _, _, supply = scenario
    decisions = allocate(*scenario)
    given = decisions.groupby("vaccine")["allocated"].sum()
    for key, vaccine_rules in rules.vaccines.items():
        limit = (supply or {}).get(key, vaccine_rules.supply_vials)
        if limit is not None:
            assert given.get(key, 0) <= limit


@PROPERTY
@given(scenarios())
def test_r6_every_line_gets_whole_boxes(scenario):
    rules = scenario[0]
    decisions = allocate(*scenario)
    box = decisions["vaccine"].map(lambda key: rules.vaccines[key].box_vials if key in rules.vaccines else 1)
    assert (decisions["allocated"] % box == 0).all() and (decisions["capped"] % box == 0).all()


@PROPERTY
@given(scenarios(("fcfs", False)))
def test_r7_fcfs_without_remainders_serves_no_line_after_a_line_refused_for_supply(scenario):
    decisions = allocate(*scenario).sort_values("rank")
    sold_out_policy = [key for key, rules in scenario[0].vaccines.items()
                       if rules.allocation == "fcfs" and not rules.remainders]
    assert "a" in sold_out_policy
    for key in sold_out_policy:
        lines = decisions[decisions["vaccine"] == key]
        missed = (lines["reason"] == "supply").cumsum().to_numpy()
        assert not ((missed > 0) & (lines["allocated"].to_numpy() > 0)).any()


@PROPERTY
@given(scenarios(), st.randoms(use_true_random=False))
def test_a_shuffle_of_the_input_rows_gives_identical_output(scenario, random):
    rules, lines, officines, register, cancelled, supply = scenario
    rows = list(range(len(lines)))
    random.shuffle(rows)
    shuffled = lines.iloc[rows].reset_index(drop=True)
    pd.testing.assert_frame_equal(allocate(rules, shuffled, officines, register, cancelled, supply),
                                  allocate(*scenario))


# The core is pure (STYLE.md habit 1)

DOMAIN = Path(pipeline.domain.__file__).parent


def test_importing_the_domain_loads_no_database_broker_smtp_or_shell_module():
    script = ("import importlib, json, pkgutil, sys, pipeline.domain as d\n"
              "for m in pkgutil.iter_modules(d.__path__): importlib.import_module('pipeline.domain.' + m.name)\n"
              "print(json.dumps(sorted(sys.modules)))")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                         cwd=DOMAIN.parents[1])
    loaded = {name.split(".")[0] for name in json.loads(run.stdout)}
    assert loaded.isdisjoint({"sqlalchemy", "alembic", "psycopg", "psycopg2", "celery", "kombu", "smtplib",
                              "aiosmtplib", "aiosmtpd", "typer", "jinja2"})
    assert not [name for name in json.loads(run.stdout)
                if name.startswith("pipeline.") and not name.startswith("pipeline.domain")]


def test_domain_source_reads_no_clock_and_no_environment():
    forbidden = re.compile(r"datetime\.now|utcnow|date\.today|Timestamp\.now|Timestamp\.today|time\.time\b|"
                           r"time\.monotonic|os\.environ|os\.getenv|getenv\(")
    sources = sorted(DOMAIN.glob("*.py"))
    assert DOMAIN / "allocate.py" in sources
    found = [f"{path.name}:{number}: {text.strip()}" for path in sources
             for number, text in enumerate(path.read_text().splitlines(), 1) if forbidden.search(text)]
    assert found == []
