"""Reading a reallocation's changes file: identifiers and counts by the same rules as the scenario,
and any problem as one line naming the file, the field and its line."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.adapters.files.changes import read_changes
from pipeline.adapters.files.scenario import ScenarioError
from tests.fuzz.inputs import CHANGES


def write(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "changes.toml"
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


def error(path: Path) -> str:
    with pytest.raises(ScenarioError) as raised:
        read_changes(path)
    message = str(raised.value)
    assert "\n" not in message and len(message) < 300, message
    return message


def test_the_contracts_example_is_read(tmp_path):
    changes = read_changes(write(tmp_path, CHANGES))
    assert changes.cancel == ("A-493905", "A-583468") and changes.supply == {"moderna": 45000, "janssen": 1200}
    assert changes.redistribution[0].to_rpps == "10233323480" and changes.depot_days[0].depot_id == "D-ALL-43"


@pytest.mark.parametrize("old, new, message", [
    ('"A-583468"]', '"A 583468"]', "changes.toml: field cancel.1 (line 3): 'A 583468' is not an identifier"),
    ('"A-583468"]', f'"{"A" * 33}"]', "changes.toml: field cancel.1 (line 3): "),
    ('depot_id = "D-ALL-43"', 'depot_id = "../D-ALL-43"',
     "changes.toml: field depot_days.0.depot_id (line 5): '../D-ALL-43' is not an identifier"),
    ('order_id = "A-647406"', 'order_id = "-A"', "changes.toml: field redistribution.0.order_id (line 9): '-A' is not"),
    ('to_rpps = "10233323480"', 'to_rpps = "1023332348０"',
     "changes.toml: field redistribution.0.to_rpps (line 11): '1023332348０' is not an RPPS number (11 digits)"),
    ('to_rpps = "10233323480"', 'to_rpps = 10233323480',
     "changes.toml: field redistribution.0.to_rpps (line 11): Input should be a valid string"),
    ("moderna = 45000", 'moderna = "45000"',
     "changes.toml: field supply.moderna (line 2): Input should be a valid integer (got '45000')"),
    ("vials = 3", "vials = 0", "changes.toml: field redistribution.0.vials (line 10): Input should be greater than"),
    ("capacity_vials = 0", "capacity_vials = 1e3", "changes.toml: field depot_days.0.capacity_vials (line 7): "),
    ('effective = "2021-06-22"\n', "", "changes.toml: field effective is missing"),
])
def test_bad_changes_value_is_one_line_naming_field_and_line(tmp_path, old, new, message):
    text = CHANGES.decode()
    assert old in text
    assert error(write(tmp_path, text.replace(old, new, 1))).startswith(message)


def test_changes_saved_as_latin1_names_the_line(tmp_path):
    path = write(tmp_path, CHANGES.decode().replace("A-493905", "Â-493905").encode("latin-1"))
    assert error(path) == "changes.toml: line 3 is not UTF-8 (byte 0xc2); save the file as UTF-8"


def test_missing_changes_file_names_it(tmp_path):
    assert error(tmp_path / "changes.toml").startswith("changes.toml: missing file")


def test_changes_with_a_bom_are_read(tmp_path):
    assert read_changes(write(tmp_path, b"\xef\xbb\xbf" + CHANGES)).effective.isoformat() == "2021-06-22"


POLICY = 'effective = "2021-06-22"\nallocation = { astrazeneca = "pro_rata" }\nremainders = { moderna = false }\n'


def test_r7_a_policy_change_is_read(tmp_path):
    changes = read_changes(write(tmp_path, POLICY))
    assert changes.allocation == {"astrazeneca": "pro_rata"} and changes.remainders == {"moderna": False}


@pytest.mark.parametrize("old, new, message", [
    ('"pro_rata"', '"lottery"', "changes.toml: field allocation.astrazeneca (line 2): Input should be 'fcfs', "
                                "'fcfs_fill' or 'pro_rata' (got 'lottery')"),
    ("moderna = false", 'moderna = "no"', "changes.toml: field remainders.moderna (line 3): Input should be a valid "
                                          "boolean (got 'no')"),
    ("moderna = false", "moderna = 0", "changes.toml: field remainders.moderna (line 3): Input should be a valid "
                                       "boolean"),
])
def test_r7_a_bad_policy_is_one_line_naming_file_field_and_line(tmp_path, old, new, message):
    assert error(write(tmp_path, POLICY.replace(old, new, 1))).startswith(message)
