"""Fairness figures per vaccine: fill rates by department and kind, officines served nothing, the spread."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

from pipeline.domain.fairness import FAIRNESS_KEYS, fairness, gini

PHARMACIES = pd.DataFrame({"finess": ["010000001", "010000002", "690000003"], "department": ["01", "01", "69"]})


def lines(*rows):
    """(finess, effector, allocated, capped, reason) of vaccine `v`."""
    return pd.DataFrame([{"order_id": f"A-{k}", "finess": f, "effector": e, "vaccine": "v", "allocated": a,
                          "capped": c, "reason": r} for k, (f, e, a, c, r) in enumerate(rows)])


def test_r7_fill_rates_by_department_and_kind_weigh_each_line_by_its_capped_demand():
    found = fairness(lines(("010000001", "pharmacien", 10, 10, "ok"), ("010000002", "medecin", 0, 10, "supply"),
                           ("690000003", "medecin", 5, 10, "supply")), PHARMACIES, ["v"])["v"]
    assert list(found) == list(FAIRNESS_KEYS)
    assert found["fill_rate_by_department"] == {"01": 0.5, "69": 0.5}
    assert found["fill_rate_by_kind"] == {"medecin": 0.25, "pharmacien": 1.0}
    assert found["officines_unserved_share"] == pytest.approx(1 / 3, abs=1e-4)
    assert (found["fill_rate_min"], found["fill_rate_max"], found["gini"]) == (0.5, 0.5, 0.0)


def test_r3_lines_refused_outright_count_for_nothing():
    found = fairness(lines(("010000001", "pharmacien", 10, 10, "ok"), ("690000003", "medecin", 0, 0, "eligibility"),
                           ("690000003", "medecin", 0, 0, "window")), PHARMACIES, ["v"])["v"]
    assert found["fill_rate_by_department"] == {"01": 1.0}
    assert found["officines_unserved_share"] == 0.0


def test_a_vaccine_nobody_could_order_has_no_figures():
    found = fairness(lines(("010000001", "pharmacien", 10, 10, "ok")), PHARMACIES, ["v", "w"])["w"]
    assert found == {"fill_rate_by_department": {}, "fill_rate_by_kind": {}, "officines_unserved_share": None,
                     "fill_rate_min": None, "fill_rate_max": None, "gini": None}


def test_the_gini_of_one_department_served_and_one_not_is_one_half():
    found = fairness(lines(("010000001", "pharmacien", 10, 10, "ok"), ("690000003", "pharmacien", 0, 10, "supply")),
                     PHARMACIES, ["v"])["v"]
    assert (found["fill_rate_min"], found["fill_rate_max"], found["gini"]) == (0.0, 1.0, 0.5)


rates = st.lists(st.floats(0, 1, allow_nan=False), min_size=1, max_size=40)


@settings(max_examples=200, deadline=None)
@given(rates)
def test_the_gini_of_fill_rates_is_between_0_and_1(values):
    assert 0.0 <= gini(values) <= 1.0


@settings(max_examples=200, deadline=None)
@given(rates, st.randoms(use_true_random=False))
def test_the_gini_does_not_depend_on_the_order_of_the_departments(values, random):
    shuffled = list(values)
    random.shuffle(shuffled)
    assert gini(shuffled) == gini(values)


@settings(max_examples=100, deadline=None)
@given(st.floats(0.01, 1), st.integers(1, 30))
def test_equal_rates_have_a_gini_of_zero(rate, n):
    assert gini([rate] * n) == pytest.approx(0.0, abs=1e-12)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["010000001", "010000002", "690000003"]),
                          st.sampled_from(["pharmacien", "medecin"]), st.integers(0, 20), st.integers(0, 20)),
                min_size=1, max_size=30), st.randoms(use_true_random=False))
def test_the_figures_do_not_depend_on_the_order_of_the_lines(rows, random):
    built = lines(*[(f, e, min(a, c), c, "ok" if a >= c else "supply") for f, e, a, c in rows])
    shuffled = built.sample(frac=1, random_state=random.randint(0, 2**31))
    found = fairness(built, PHARMACIES, ["v"])["v"]
    assert fairness(shuffled, PHARMACIES, ["v"])["v"] == found
    for rate in [*found["fill_rate_by_department"].values(), *found["fill_rate_by_kind"].values()]:
        assert 0.0 <= rate <= 1.0
