"""The trace of each decision (`allocate(..., trace=True)`), step by step, on small hand-built sessions."""

from __future__ import annotations

import pandas as pd
import pytest

from pipeline.domain.allocate import ALLOCATION_COLUMNS, TRACE_COLUMNS, allocate
from pipeline.domain.explain import sold_out
from tests.conftest import OPENS, orders, pharmacies, professionals, session, vaccine

OFFICINE, OTHER = "010000001", "010000002"
DOCTOR, NURSE_1, NURSE_2 = "10000000001", "10000000008", "10000000009"
PHARMACIES = pharmacies((OFFICINE, "01"), (OTHER, "01"))
PROFESSIONALS = professionals((DOCTOR, "medecin", OFFICINE), (NURSE_1, "infirmier", OFFICINE),
                              (NURSE_2, "infirmier", OFFICINE))


def traced(rules, *lines: dict) -> dict[str, dict]:
    decisions = allocate(rules, orders(*lines), PHARMACIES, PROFESSIONALS, trace=True)
    return {row["order_id"]: row for row in decisions.to_dict("records")}


def test_the_trace_adds_columns_and_changes_no_decision():
    rules = session(janssen=vaccine({"pharmacien": {"first": 5}}, supply=7))
    lines = [{"vials": 4}, {"vials": 4}, {"vials": 3, "finess": OTHER}, {"vials": 2, "finess": "099999999"}]
    plain = allocate(rules, orders(*lines), PHARMACIES, PROFESSIONALS)
    with_trace = allocate(rules, orders(*lines), PHARMACIES, PROFESSIONALS, trace=True)
    assert list(with_trace.columns) == list(plain.columns) + TRACE_COLUMNS
    pd.testing.assert_frame_equal(with_trace[plain.columns], plain)
    assert list(plain.columns[:len(ALLOCATION_COLUMNS)]) == ALLOCATION_COLUMNS


def test_r4_each_line_shows_what_earlier_lines_of_its_beneficiary_kept_of_the_cap():
    rules = session(janssen=vaccine({"medecin": {"first": 5}}))
    doctor = {"effector": "medecin", "rpps": DOCTOR}
    got = traced(rules, {**doctor, "vials": 3}, {**doctor, "vials": 4}, {**doctor, "vials": 1})
    assert [(got[k]["cap"], got[k]["cap_used_before"], got[k]["after_cap"], got[k]["allocated"], got[k]["reason"])
            for k in ("A-001", "A-002", "A-003")] == [(5, 0, 3, 3, "ok"), (5, 3, 2, 2, "cap"), (5, 5, 0, 0, "cap")]


def test_r4_a_line_refused_outright_has_no_cap_and_uses_none_of_it():
    rules = session(janssen=vaccine({"pharmacien": {"first": 5}}))
    got = traced(rules, {"vials": 2, "finess": "099999999"}, {"vials": 5})
    refused = got["A-001"]
    assert refused["reason"] == "unknown_pharmacy"
    assert all(pd.isna(refused[c]) for c in ("cap", "cap_used_before", "after_cap", "supply_before"))
    assert (got["A-002"]["cap_used_before"], got["A-002"]["allocated"]) == (0, 5)


def test_r5_a_nurse_line_shows_the_per_nurse_cap_times_the_attached_nurses():
    rules = session(janssen=vaccine({"infirmier": {"first": 10}}))
    got = traced(rules, {"effector": "infirmier", "vials": 30}, {"effector": "infirmier", "finess": OTHER, "vials": 5})
    assert (got["A-001"]["cap"], got["A-001"]["nurses"], got["A-001"]["after_cap"]) == (20, 2, 20)
    assert (got["A-002"]["cap"], got["A-002"]["nurses"], got["A-002"]["reason"]) == (0, 0, "cap")


def test_r5_lines_of_other_kinds_count_no_nurses():
    rules = session(janssen=vaccine({"pharmacien": {"first": 10}}))
    assert pd.isna(traced(rules, {"vials": 1})["A-001"]["nurses"])


def test_r6_a_line_shows_its_vials_after_the_cap_and_after_rounding_to_whole_boxes():
    rules = session(moderna=vaccine({"pharmacien": {"first": 30}}, box=10))
    got = traced(rules, {"vaccine": "moderna", "vials": 25}, {"vaccine": "moderna", "vials": 7})
    assert (got["A-001"]["after_cap"], got["A-001"]["capped"], got["A-001"]["reason"]) == (25, 20, "unit")
    assert (got["A-002"]["cap_used_before"], got["A-002"]["after_cap"], got["A-002"]["capped"]) == (20, 7, 0)
    assert got["A-002"]["reason"] == "unit" and pd.isna(got["A-002"]["supply_before"])


@pytest.mark.parametrize("allocation, remainders, allocated", [
    ("fcfs", True, [4, 4, 2, 0]),
    ("fcfs", False, [4, 4, 0, 0]),
    ("fcfs_fill", False, [4, 4, 0, 2]),
])
def test_r7_each_line_shows_the_supply_left_when_its_turn_came(allocation, remainders, allocated):
    rules = session(janssen=vaccine({"pharmacien": {"first": 10}}, supply=10, allocation=allocation,
                                    remainders=remainders))
    got = traced(rules, {"vials": 4}, {"vials": 4, "finess": OTHER}, {"vials": 3, "finess": OTHER},
                 {"vials": 2})
    lines = [got[k] for k in ("A-001", "A-002", "A-003", "A-004")]
    assert [line["allocated"] for line in lines] == allocated
    left = [10 - sum(allocated[:k]) for k in range(4)]
    assert [line["supply_before"] for line in lines] == left
    assert all(pd.isna(line["pro_rata_share"]) for line in lines)


def test_r7_a_pro_rata_line_shows_its_exact_share_and_the_supply_left_in_submission_order():
    rules = session(janssen=vaccine({"pharmacien": {"first": 10}}, supply=5, allocation="pro_rata"))
    got = traced(rules, {"vials": 4}, {"vials": 4, "finess": OTHER})
    assert [got[k]["pro_rata_share"] for k in ("A-001", "A-002")] == [2.5, 2.5]
    assert [got[k]["allocated"] for k in ("A-001", "A-002")] == [3, 2]
    assert [got[k]["supply_before"] for k in ("A-001", "A-002")] == [5, 2]


def test_r7_a_pro_rata_supply_that_covers_the_demand_shares_nothing():
    rules = session(janssen=vaccine({"pharmacien": {"first": 10}}, supply=50, allocation="pro_rata"))
    assert pd.isna(traced(rules, {"vials": 4})["A-001"]["pro_rata_share"])


def test_r7_an_unlimited_vaccine_has_no_supply_left_to_show():
    rules = session(janssen=vaccine({"pharmacien": {"first": 10}}))
    assert pd.isna(traced(rules, {"vials": 4})["A-001"]["supply_before"])


@pytest.mark.parametrize("allocation, remainders, first_refused", [
    ("fcfs", True, "A-004"),  # A-003 gets the last 2 vials (partial), A-004 none
    ("fcfs", False, "A-003"),  # A-003 does not fit whole: sold out there
    ("fcfs_fill", False, "A-003"),  # A-003 does not fit; A-004, smaller, is still served
    ("pro_rata", True, None),  # every line gets its share: none is refused for supply
])
def test_r7_the_vaccine_sold_out_at_the_submission_of_its_first_line_refused_for_supply(
        allocation, remainders, first_refused):
    rules = session(janssen=vaccine({"pharmacien": {"first": 10}}, supply=10, allocation=allocation,
                                    remainders=remainders))
    lines = orders({"vials": 4}, {"vials": 4, "finess": OTHER}, {"vials": 4, "finess": OTHER}, {"vials": 1})
    decisions = allocate(rules, lines, PHARMACIES, PROFESSIONALS, trace=True)
    at = dict(zip(lines["order_id"], lines["submitted_at"]))
    assert sold_out(decisions) == {"janssen": at[first_refused] if first_refused else None}


def test_r7_a_vaccine_no_line_asked_for_never_sold_out():
    rules = session(janssen=vaccine({"pharmacien": {"first": 10}}, supply=1), other=vaccine(supply=0))
    decisions = allocate(rules, orders({"vials": 1, "submitted_at": OPENS + pd.Timedelta(minutes=5)}),
                         PHARMACIES, PROFESSIONALS, trace=True)
    assert sold_out(decisions, list(rules.vaccines)) == {"janssen": None, "other": None}
