"""A run's digest: SHA-256 over the canonical form of its decisions and deliveries."""

from __future__ import annotations

import datetime as dt
import re

import pandas as pd
from hypothesis import given, settings, strategies as st

from pipeline.domain.digest import run_digest

DECISIONS = pd.DataFrame({"order_id": ["A-1", "A-2", "A-3"], "requested": [10, 5, 20], "allocated": [10, 0, 12],
                          "status": ["served", "refused", "partial"], "reason": ["ok", "supply", "supply"]})
DELIVERIES = pd.DataFrame({"order_id": ["A-1", "A-3", "A-3"], "depot_id": ["D-1", "D-1", "D-1"],
                           "vaccine": ["janssen"] * 3, "delivery_date": [dt.date(2021, 6, 21), dt.date(2021, 6, 22), None],
                           "vials": [10, 8, 4], "status": ["scheduled", "scheduled", "pending"]})


def test_the_digest_is_sha256_of_64_hex_digits():
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", run_digest(DECISIONS, DELIVERIES))


def test_one_allocation_changed_by_hand_changes_the_digest():
    changed = DECISIONS.assign(allocated=[10, 0, 11])
    assert run_digest(changed, DELIVERIES) != run_digest(DECISIONS, DELIVERIES)


def test_one_delivery_moved_to_another_day_changes_the_digest():
    moved = DELIVERIES.assign(delivery_date=[dt.date(2021, 6, 21), dt.date(2021, 6, 23), None])
    assert run_digest(DECISIONS, moved) != run_digest(DECISIONS, DELIVERIES)


def test_a_pending_remainder_and_a_dated_one_differ():
    dated = DELIVERIES.assign(delivery_date=[dt.date(2021, 6, 21), dt.date(2021, 6, 22), dt.date(2021, 6, 25)],
                              status=["scheduled"] * 3)
    assert run_digest(DECISIONS, dated) != run_digest(DECISIONS, DELIVERIES)


def test_dates_as_text_or_as_days_and_integers_of_any_width_give_the_same_digest():
    as_text = DELIVERIES.assign(delivery_date=["2021-06-21", "2021-06-22", None], vials=DELIVERIES["vials"].astype("int32"))
    assert run_digest(DECISIONS.astype({"allocated": "int16"}), as_text) == run_digest(DECISIONS, DELIVERIES)


@settings(max_examples=60, deadline=None)
@given(st.permutations(range(3)), st.permutations(range(3)))
def test_the_order_of_the_rows_does_not_change_the_digest(lines, days):
    assert (run_digest(DECISIONS.iloc[list(lines)], DELIVERIES.iloc[list(days)])
            == run_digest(DECISIONS, DELIVERIES))
