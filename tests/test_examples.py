"""Conformance on the conformance scenarios (tests/conformance): allocations exact, rejections at the right lines."""

from __future__ import annotations

import pandas as pd
import pytest

from pipeline.domain.allocate import ALLOCATION_COLUMNS, allocate
from pipeline.adapters.files.scenario import load_scenario
from tests.conftest import EXAMPLES

SCENARIOS = ["notice-small", "mixed-small"]


def expected(name: str, table: str) -> pd.DataFrame:
    # Every cell as text: FINESS keep their leading zeros, an empty RPPS stays empty.
    return pd.read_csv(EXAMPLES / name / "expected" / table, dtype=str, keep_default_na=False)


def as_text(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.astype(str).set_index("order_id").sort_index()


@pytest.fixture(scope="module", params=SCENARIOS)
def example(request):
    scenario = load_scenario(EXAMPLES / request.param)
    decisions = allocate(scenario.session, scenario.orders, scenario.pharmacies, scenario.professionals)
    return request.param, scenario, decisions


def test_examples_are_there():
    assert all((EXAMPLES / name / "expected" / "allocations.csv").is_file() for name in SCENARIOS)


def test_allocations_equal_the_expected_ones_on_every_column(example):
    name, _, decisions = example
    want = expected(name, "allocations.csv")
    assert list(want.columns) == ALLOCATION_COLUMNS
    got = as_text(decisions[ALLOCATION_COLUMNS])
    want = as_text(want)
    assert got.index.tolist() == want.index.tolist()
    differences = got.compare(want, result_names=("got", "expected"))
    assert differences.empty, f"{name}: {len(differences)} lines differ\n{differences.head(20)}"


def test_rejections_are_the_expected_lines_and_order_ids(example):
    name, scenario, _ = example
    want = expected(name, "rejections.csv")
    got = scenario.rejections
    assert list(got.columns[:3]) == ["line", "order_id", "message"]
    assert list(zip(got["line"].astype(int), got["order_id"])) == list(zip(want["line"].astype(int), want["order_id"]))
    assert got["message"].str.len().gt(0).all()


def test_every_readable_row_is_decided_once(example):
    name, scenario, decisions = example
    orders_file = pd.read_csv(EXAMPLES / name / "orders.csv", dtype=str, keep_default_na=False)
    assert len(decisions) + len(scenario.rejections) == len(orders_file)
    assert decisions["order_id"].is_unique
