"""`explain` as a service: each line's stored trace agrees with the scenario, the run and its deliveries."""

from __future__ import annotations

import pandas as pd
import pytest

from pipeline.adapters.db import lines as line_reads, runs
from pipeline.domain.rules import NAMED_KINDS
from pipeline.domain.vocabulary import Reason
from pipeline.services.refusals import NoRun, UnknownOrder
from pipeline.services.explain import explain

CONTRACT_KEYS = ["order_id", "run", "rank", "requested", "cap", "cap_used_before", "after_cap", "after_unit",
                 "supply_before", "allocated", "status", "reason", "deliveries", "pending"]


@pytest.fixture
def lines(db, prepared) -> pd.DataFrame:
    with db.connect() as c:
        return line_reads.read(c, prepared, runs.run_row(c, prepared).session_id).lines


def test_the_explanation_starts_with_the_keys_of_the_contract_in_their_order(db, lines):
    found = explain(db, lines["order_id"].iloc[0])
    assert list(found)[:len(CONTRACT_KEYS)] == CONTRACT_KEYS


def test_r7_the_rank_is_the_line_s_place_in_the_submission_order_of_all_lines(db, scenario, lines):
    order = scenario.orders.sort_values(["submitted_at", "order_id"], kind="stable")["order_id"].tolist()
    for order_id in lines["order_id"].sample(20, random_state=1):
        assert explain(db, order_id)["rank"] == order.index(order_id) + 1


def test_r8_the_deliveries_and_pending_vials_add_up_to_what_the_line_got(db, lines):
    for line in lines[lines["allocated"] > 0].head(30).itertuples():
        found = explain(db, line.order_id)
        assert found["allocated"] == line.allocated
        assert sum(d["vials"] for d in found["deliveries"]) + found["pending"] == line.allocated
        assert [d["date"] for d in found["deliveries"]] == sorted(d["date"] for d in found["deliveries"])


def test_r4_the_cap_used_before_is_what_earlier_lines_of_the_beneficiary_kept(db, scenario, lines):
    named = lines["effector"].isin(NAMED_KINDS)
    key = pd.Series(list(zip(lines["rpps"].where(named, lines["finess"]), lines["effector"], lines["vaccine"],
                             lines["injection"])), index=lines.index)
    repeated = lines[key.duplicated(keep=False) & (lines["reason"].isin(["ok", "cap", "unit", "supply"]))]
    assert len(repeated), "the scenario must have beneficiaries with several lines"
    checked = 0
    for line in repeated.itertuples():
        found = explain(db, line.order_id)
        earlier = repeated[(key[repeated.index] == key[line.Index]) & (repeated["rank"] < line.rank)]
        assert found["cap_used_before"] == min(int(earlier["capped"].sum()), found["cap"])
        assert found["after_cap"] == min(line.requested, max(found["cap"] - found["cap_used_before"], 0))
        if found["cap_used_before"]:
            assert any("déjà commandés par" in p and earlier["order_id"].iloc[0] in p for p in found["phrases"])
            checked += 1
    assert checked


def test_r7_a_line_refused_for_supply_says_when_its_vaccine_sold_out(db, scenario, lines):
    refused = lines[(lines["reason"] == "supply") & (lines["status"] == "refused")]
    assert len(refused), "the scenario must sell a vaccine out"
    line = refused.sort_values("rank").iloc[-1]
    first = refused[refused["vaccine"] == line["vaccine"]].sort_values("rank").iloc[0]
    found = explain(db, line["order_id"])
    assert pd.Timestamp(found["sold_out_at"]) == first["submitted_at"]
    assert found["supply_before"] is not None and found["allocated"] < found["after_unit"]
    assert any("épuisé à" in p for p in found["phrases"])


def test_a_line_refused_outright_has_no_cap_and_says_why(db, lines):
    line = lines[lines["reason"] == "unknown_pharmacy"].iloc[0]
    found = explain(db, line["order_id"])
    assert [found[k] for k in ("cap", "cap_used_before", "after_cap", "after_unit", "supply_before")] == [None] * 5
    assert f"{Reason.UNKNOWN_PHARMACY.long} : FINESS {line['finess']}" in found["phrases"]


def test_an_unknown_order_or_run_is_one_sentence(db, lines):
    with pytest.raises(UnknownOrder) as refused:
        explain(db, "A-NOPE")
    assert (refused.value.order_id, refused.value.status, str(refused.value)) == ("A-NOPE", 404, "Ligne inconnue : A-NOPE.")
    with pytest.raises(NoRun) as refused:
        explain(db, lines["order_id"].iloc[0], version=9)
    assert refused.value.version == 9 and str(refused.value).endswith("n'a pas de version 9.")
