"""The session and changes models as code builds them: the identifier, zone and count rules of
domain/identifiers.py hold there too, and a stored session reads back the same."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from pipeline.domain.changes import Changes
from pipeline.domain.rules import Session
from tests.conftest import session, vaccine


def test_a_session_read_back_from_its_stored_json_is_equal():
    rules = session(zone=("75", "2A", "971"), janssen=vaccine(supply=40))
    assert Session.model_validate(json.loads(rules.model_dump_json())) == rules


def test_a_vaccine_without_a_product_code_stores_the_json_it_stored_before_and_one_with_it_reads_back():
    # The stored JSON feeds the input hash: a session file without a code keeps the hash it had.
    assert "product_code" not in session().model_dump_json()
    rules = session(janssen=vaccine().model_copy(update={"product_code": "3400930000000"}))
    assert json.loads(rules.model_dump_json())["vaccines"]["janssen"]["product_code"] == "3400930000000"
    assert Session.model_validate(json.loads(rules.model_dump_json())) == rules


def test_an_empty_zone_built_in_code_is_a_session_open_to_no_department():
    assert not session(zone=()).in_zone("75")


def test_an_empty_zone_read_from_a_file_is_refused():
    data = json.loads(session().model_dump_json()) | {"zone": []}
    with pytest.raises(ValidationError, match="an empty list of departments"):
        Session.model_validate(data, context={"file": "session.toml"})


@pytest.mark.parametrize("field, value", [("id", "a b"), ("id", ""), ("id", "x" * 33), ("zone", ["20"]),
                                          ("zone", ["2a"]), ("zone", [75]), ("reference", "N°\x00")])
def test_a_session_breaking_an_identifier_zone_or_text_rule_is_refused(field, value):
    with pytest.raises(ValidationError):
        Session.model_validate(json.loads(session().model_dump_json()) | {field: value})


@pytest.mark.parametrize("changes", [{"cancel": ["A 1"]}, {"supply": {"janssen": "40"}}, {"supply": {"janssen": True}},
                                     {"supply": {"janssen": 10**10}},
                                     {"redistribution": [{"order_id": "A-1", "vials": 1, "to_rpps": "٠" * 11}]},
                                     {"depot_days": [{"depot_id": "", "date": "2021-06-22", "capacity_vials": 0}]}])
def test_changes_breaking_an_identifier_or_count_rule_are_refused_whatever_their_source(changes):
    with pytest.raises(ValidationError):
        Changes.model_validate({"effective": "2021-06-22"} | changes)
