"""Reading a scenario folder as a new user would write it: a broken file stops with one clear
sentence naming it; a bad order row is rejected with its line and every other row still read."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pipeline.adapters.files.scenario import ScenarioError, load_scenario
from tests.conftest import EXAMPLES

HEADER = "order_id,submitted_at,finess,effector,rpps,vaccine,injection,vials\n"
GOOD = "{id},2021-06-14T09:00:00+02:00,010763615,pharmacien,,janssen,first,2\n"  # officine of notice-small


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A writable copy of the notice-small scenario, without its expected outputs."""
    target = tmp_path / "scenario"
    shutil.copytree(EXAMPLES / "notice-small", target, ignore=shutil.ignore_patterns("expected"))
    for path in [target, *target.iterdir()]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return target


def edit(folder: Path, name: str, old: str, new: str) -> None:
    text = (folder / name).read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {name}"
    (folder / name).write_text(text.replace(old, new, 1), encoding="utf-8")


def error(folder: Path) -> str:
    """The message of the ScenarioError the folder gives; it must read as one line."""
    with pytest.raises(ScenarioError) as raised:
        load_scenario(folder)
    message = str(raised.value)
    assert "\n" not in message and "Traceback" not in message and len(message) < 300, message
    return message


def orders(folder: Path, *rows: str, header: str = HEADER) -> tuple:
    """Readable orders and rejections of an orders.csv made of these rows."""
    (folder / "orders.csv").write_text(header + "".join(rows), encoding="utf-8")
    scenario = load_scenario(folder)
    return scenario.orders, scenario.rejections


def rejected(rejections) -> dict[int, tuple[str, str]]:
    return {int(row.line): (row.order_id, row.message) for row in rejections.itertuples()}


# A broken file stops the run before anything is written

def test_the_unedited_copy_loads(folder):
    scenario = load_scenario(folder)
    assert len(scenario.orders) == 500 and len(scenario.rejections) == 8


def test_missing_folder_names_the_folder(tmp_path):
    with pytest.raises(ScenarioError, match="no such scenario folder"):
        load_scenario(tmp_path / "nowhere")


def test_missing_session_toml_names_the_file(folder):
    (folder / "session.toml").unlink()
    assert error(folder).startswith("session.toml: missing file")


def test_toml_syntax_error_names_the_file_and_line(folder):
    edit(folder, "session.toml", "supply_vials = 170", "supply_vials = 170 vials")
    message = error(folder)
    assert message.startswith("session.toml: not valid TOML") and "line 15" in message


def test_typo_in_a_vaccine_key_names_the_unknown_field(folder):
    edit(folder, "session.toml", 'allocation = "fcfs"', 'allocaton = "fcfs"')
    message = error(folder)
    assert message.startswith("session.toml: field vaccines.moderna.allocaton")
    assert "not permitted" in message


def test_bad_policy_value_names_the_field_and_the_choices(folder):
    edit(folder, "session.toml", 'allocation = "fcfs"', 'allocation = "first_come"')
    message = error(folder)
    assert message.startswith("session.toml: field vaccines.moderna.allocation")
    assert "'fcfs', 'fcfs_fill' or 'pro_rata'" in message and "first_come" in message


def test_typo_in_a_kind_of_the_caps_names_the_kind(folder):
    edit(folder, "session.toml", "medecin_travail = { first = 10 }", "medecin_travial = { first = 10 }")
    assert error(folder).startswith("session.toml: field vaccines.moderna.caps.medecin_travial (line 20): Input should be")


def test_typo_in_the_zone_names_the_field(folder):
    edit(folder, "session.toml", 'zone = "national"', 'zone = "nationale"')
    assert error(folder) == "session.toml: field zone (line 9): Input should be 'national' (got 'nationale')"


def test_missing_session_field_names_it(folder):
    edit(folder, "session.toml", 'deliver_by = "2021-07-02"\n', "")
    assert error(folder) == "session.toml: field vaccines.moderna.deliver_by is missing (in the table at line 11)"


def test_session_closing_before_it_opens_gives_a_short_message(folder):
    edit(folder, "session.toml", 'closes_at = "2021-06-15T23:00:00"', 'closes_at = "2021-06-13T23:00:00"')
    assert error(folder) == "session.toml: field (top level): closes_at is not after opens_at"


def test_session_time_with_offset_is_refused_as_not_local(folder):
    edit(folder, "session.toml", 'opens_at = "2021-06-14T08:00:00"', 'opens_at = "2021-06-14T08:00:00+02:00"')
    assert error(folder).startswith("session.toml: field opens_at (line 6): a local time without offset is expected")


def test_unknown_time_zone_names_the_field(folder):
    edit(folder, "session.toml", "Europe/Paris", "Europe/Pariss")
    assert error(folder) == "session.toml: field timezone (line 5): unknown time zone 'Europe/Pariss'"


def test_missing_orders_csv_names_the_file(folder):
    (folder / "orders.csv").unlink()
    assert error(folder).startswith("orders.csv: missing file")


@pytest.mark.parametrize("content", ["", "\n\n", "  \n"])
def test_empty_orders_csv_asks_for_the_header(folder, content):
    (folder / "orders.csv").write_text(content)
    assert error(folder) == ("orders.csv: empty file (a header line is expected: "
                             "order_id,submitted_at,finess,effector,rpps,vaccine,injection,vials)")


def test_missing_column_names_the_column_expected(folder):
    edit(folder, "orders.csv", "effector,rpps,vaccine", "effector,vaccine")
    assert error(folder).startswith("orders.csv: column 5 of the header must be 'rpps', found 'vaccine'")


def test_misspelt_register_column_names_it(folder):
    edit(folder, "pharmacies.csv", "department", "departement")
    assert error(folder).startswith("pharmacies.csv: column 4 of the header must be 'department', found 'departement'")


@pytest.mark.parametrize("name", ["pharmacies.csv", "professionals.csv", "depots.csv"])
def test_register_saved_as_latin1_names_the_file_and_line_and_asks_for_utf8(folder, name):
    path = folder / name
    text = path.read_text(encoding="utf-8")
    accent = next(character for character in text if not character.isascii())
    line = text[:text.index(accent)].count("\n") + 1
    path.write_bytes(text.encode("latin-1"))
    assert error(folder) == f"{name}: line {line} is not UTF-8 (byte 0x{ord(accent):02x}); save the file as UTF-8"


def test_latin1_byte_far_in_orders_csv_names_its_line(folder):
    path = folder / "orders.csv"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[40] = lines[40].replace("A-", "Â-", 1)
    path.write_bytes("".join(lines).encode("latin-1"))
    assert error(folder) == "orders.csv: line 41 is not UTF-8 (byte 0xc2); save the file as UTF-8"


def test_latin1_session_toml_names_the_file(folder):
    path = folder / "session.toml"
    path.write_bytes(path.read_text(encoding="utf-8").encode("latin-1", errors="replace"))
    assert error(folder).startswith("session.toml: line ") and "not UTF-8" in error(folder)


@pytest.mark.parametrize("name, old, new, message", [
    ("pharmacies.csv", "053203210,", "05320321,",
     "pharmacies.csv: line 5, field finess: '05320321' is not a FINESS number (9 digits, A or B allowed second)"),
    ("pharmacies.csv", "053203210,", "010763615,",
     "pharmacies.csv: line 5, field finess: '010763615' is not unique (already listed)"),
    ("pharmacies.csv", "05,D-PHX-2A", "05,D-NOPE",
     "pharmacies.csv: line 5, field depot_id: 'D-NOPE' is not a depot of depots.csv"),
    ("professionals.csv", "10922322563,", "1092232256,",
     "professionals.csv: line 3, field rpps: '1092232256' is not an RPPS number (11 digits)"),
    ("professionals.csv", "10922322563,medecin", "10922322563,docteur",
     "professionals.csv: line 3, field kind: 'docteur' is not one of medecin, medecin_travail, sage_femme, infirmier"),
    ("professionals.csv", "10922322563,medecin,", "10922322563,medecin,Dr,",
     "professionals.csv: line 3 has 6 fields, the header 5"),
    ("depots.csv", ",34,Mon-Fri", ",trente,Mon-Fri",
     "depots.csv: line 2, field capacity_vials: 'trente' is not a whole number of vials (ASCII digits, at most 9)"),
    ("depots.csv", ",34,Mon-Fri", ",34,Lun-Ven",
     "depots.csv: line 2, field weekdays: 'Lun-Ven' is not weekdays like Mon-Fri or Mon,Wed,Fri"),
    ("depot_days.csv", "D-ALL-43,2021-06-25,18", "D-ALL-43,25/06/2021,18",
     "depot_days.csv: line 2, field date: '25/06/2021' is not a date like 2021-06-22"),
])
def test_bad_register_row_names_the_file_line_and_field(folder, name, old, new, message):
    edit(folder, name, old, new)
    assert error(folder) == message


def test_missing_depots_csv_names_the_file(folder):
    (folder / "depots.csv").unlink()
    assert error(folder).startswith("depots.csv: missing file")


def test_depot_days_csv_is_optional(folder):
    (folder / "depot_days.csv").unlink()
    assert len(load_scenario(folder).depot_days) == 0


# A bad order row is rejected with its line number; every other row is still read

def test_date_without_offset_is_rejected_and_later_rows_read(folder):
    found, rejections = orders(folder, GOOD.format(id="A-1"),
                               "A-2,2021-06-14T09:00:00,010763615,pharmacien,,janssen,first,2\n",
                               GOOD.format(id="A-3"))
    assert rejected(rejections) == {3: ("A-2", "date invalide dans submitted_at : '2021-06-14T09:00:00' (ISO 8601 "
                                            "avec le décalage horaire attendu, comme 2021-06-14T09:12:03+02:00)")}
    assert found["order_id"].tolist() == ["A-1", "A-3"] and found["line"].tolist() == [2, 4]


def test_offsets_are_read_as_instants(folder):
    found, rejections = orders(folder, "A-1,2021-06-14T09:00:00+02:00,010763615,pharmacien,,janssen,first,2\n",
                               "A-2,2021-06-14T07:00:00Z,010763615,pharmacien,,janssen,first,2\n",
                               "A-3,2021-06-14T08:00:00+0100,010763615,pharmacien,,janssen,first,2\n")
    assert rejections.empty
    assert found["submitted_at"].nunique() == 1 and str(found["submitted_at"].dt.tz) == "UTC"


@pytest.mark.parametrize("vials", ["0", "-3", "7.5", "douze", "1e3", "+5"])
def test_vials_not_a_positive_integer_is_rejected(folder, vials):
    found, rejections = orders(folder, GOOD.format(id="A-1").replace(",2\n", f",{vials}\n"), GOOD.format(id="A-2"))
    assert rejected(rejections) == {2: ("A-1", f"nombre invalide dans vials : '{vials}' (entier positif attendu)")}
    assert found["order_id"].tolist() == ["A-2"]


@pytest.mark.parametrize("old, new, message", [
    ("pharmacien", "docteur",
     "effector inconnu : 'docteur' (l'un de pharmacien, medecin, medecin_travail, sage_femme, infirmier)"),
    ("first", "third", "injection inconnue : 'third' (first ou second attendu)"),
    ("janssen", "sputnik", "vaccin inconnu : 'sputnik' (vaccins de la session : moderna, janssen, astrazeneca)"),
])
def test_unknown_effector_injection_or_vaccine_is_rejected(folder, old, new, message):
    found, rejections = orders(folder, GOOD.format(id="A-1"), GOOD.format(id="A-2").replace(old, new),
                               GOOD.format(id="A-3"))
    assert rejected(rejections) == {3: ("A-2", message)}
    assert found["order_id"].tolist() == ["A-1", "A-3"]


def test_missing_fields_are_named(folder):
    found, rejections = orders(folder, "A-1,2021-06-14T09:00:00+02:00,,pharmacien,,,first,2\n",
                               "A-2,2021-06-14T09:00:00+02:00,010763615\n",
                               ",2021-06-14T09:00:00+02:00,010763615,pharmacien,,janssen,first,2\n",
                               GOOD.format(id="A-4"))
    assert rejected(rejections) == {2: ("A-1", "champs manquants : finess, vaccine"),
                                    3: ("A-2", "champs manquants : effector, vaccine, injection, vials"),
                                    4: ("", "champ manquant : order_id")}
    assert found["order_id"].tolist() == ["A-4"]


def test_row_with_more_fields_than_the_header_is_rejected(folder):
    _, rejections = orders(folder, GOOD.format(id="A-1").replace("\n", ",extra\n"))
    assert rejected(rejections) == {2: ("A-1", "plus de champs que les 8 de l'en-tête")}


def test_duplicate_order_id_names_the_first_line(folder):
    found, rejections = orders(folder, GOOD.format(id="A-1"), GOOD.format(id="A-2"), GOOD.format(id="A-1"),
                               GOOD.format(id="A-1"))
    assert rejected(rejections) == {4: ("A-1", "order_id en double : A-1 (déjà en ligne 2)"),
                                    5: ("A-1", "order_id en double : A-1 (déjà en ligne 2)")}
    assert found["order_id"].tolist() == ["A-1", "A-2"]


def test_a_quoted_field_never_runs_over_a_line_end_so_later_lines_keep_their_numbers(folder):
    found, rejections = orders(folder, GOOD.format(id="A-1"),
                               'A-2,2021-06-14T09:00:00+02:00,010763615,pharmacien,,janssen,first,"1\n2"\n',
                               "A-3,2021-06-14T09:00:00,010763615,pharmacien,,janssen,first,2\n",
                               GOOD.format(id="A-4"))
    assert {line: order_id for line, (order_id, _) in rejected(rejections).items()} == {3: "A-2", 4: '2"', 5: "A-3"}
    assert rejected(rejections)[3][1].startswith("un champ entre guillemets ne se ferme pas sur sa ligne")
    assert found.set_index("order_id")["line"].to_dict() == {"A-1": 2, "A-4": 6}


def test_blank_lines_are_skipped_but_counted(folder):
    found, rejections = orders(folder, GOOD.format(id="A-1"), "\n", ",,,,,,,\n",
                               "A-2,2021-06-14T09:00:00,010763615,pharmacien,,janssen,first,2\n")
    assert list(rejected(rejections)) == [5]
    assert found["order_id"].tolist() == ["A-1"]


def test_spaces_around_fields_are_ignored(folder):
    found, rejections = orders(folder, " A-1 , 2021-06-14T09:00:00+02:00 ,010763615, pharmacien ,,janssen,first, 3 \n")
    assert rejections.empty
    assert found[["order_id", "finess", "effector", "vials"]].values.tolist() == [["A-1", "010763615", "pharmacien", 3]]


def test_windows_file_with_bom_and_crlf_is_read_with_the_right_lines(folder):
    rows = GOOD.format(id="A-1") + "A-2,hier,010763615,pharmacien,,janssen,first,2\n" + GOOD.format(id="A-3")
    (folder / "orders.csv").write_bytes(("\ufeff" + HEADER + rows).replace("\n", "\r\n").encode("utf-8"))
    scenario = load_scenario(folder)
    assert rejected(scenario.rejections) == {
        3: ("A-2", "date invalide dans submitted_at : 'hier' (ISO 8601 avec le décalage horaire attendu, comme "
                   "2021-06-14T09:12:03+02:00)")}
    assert scenario.orders["order_id"].tolist() == ["A-1", "A-3"]


def test_columns_added_after_the_contracts_are_allowed(folder):
    found, rejections = orders(folder, GOOD.format(id="A-1").replace("\n", ",urgent\n"),
                               header=HEADER.replace("\n", ",comment\n"))
    assert rejections.empty and found["order_id"].tolist() == ["A-1"]


def test_header_only_orders_csv_gives_no_orders_and_no_rejections(folder):
    found, rejections = orders(folder)
    assert found.empty and rejections.empty
    assert list(rejections.columns) == ["line", "order_id", "message"]


def test_every_bad_row_of_a_mixed_file_is_rejected_and_every_good_row_kept(folder):
    bad = ["A-b1,15/06/2021 10:12,010763615,pharmacien,,janssen,first,2\n",
           "A-b2,2021-06-31T10:15:00.000+02:00,010763615,pharmacien,,janssen,first,2\n",
           GOOD.format(id="A-b3").replace(",2\n", ",0\n"),
           GOOD.format(id="A-b4").replace("janssen", "Janssen"),
           GOOD.format(id="A-g1")]
    rows = [GOOD.format(id=f"A-g{number}") if number % 3 else bad[number // 3 % len(bad)] for number in range(1, 31)]
    found, rejections = orders(folder, *rows)
    assert len(found) + len(rejections) == 30
    assert rejected(rejections).keys() == {number + 1 for number in range(1, 31) if number % 3 == 0}
    assert found["order_id"].is_unique


# One set of limits on every backend: what loads fits tables.py's columns and holds no control character

def test_order_row_with_33_character_order_id_is_rejected_with_its_line(folder):
    long_id = "A" * 33
    found, rejections = orders(folder, GOOD.format(id=long_id), GOOD.format(id="A" * 32))
    assert rejected(rejections) == {2: (long_id, f"order_id invalide : '{long_id}' (1 à 32 lettres ASCII, chiffres, « - », « _ » ou « . », commençant par une lettre ou un chiffre)")}
    assert found["order_id"].tolist() == ["A" * 32]


@pytest.mark.parametrize("order_id", ["-A1", ".A1", "A 1", "A/1", "Ä-1", "A-1\x00"])
def test_order_id_outside_the_identifier_alphabet_is_rejected(folder, order_id):
    found, rejections = orders(folder, GOOD.format(id=order_id), GOOD.format(id="A-2"))
    assert list(rejected(rejections)) == [2] and rejected(rejections)[2][1].startswith("order_id invalide")
    assert found["order_id"].tolist() == ["A-2"]


def test_order_row_with_a_nul_byte_is_rejected_naming_the_field_and_the_id_kept_storable(folder):
    found, rejections = orders(folder, GOOD.format(id="A-1").replace("010763615", "0107\x0063615"),
                               GOOD.format(id="A-\x002"), GOOD.format(id="A-3"))
    assert rejected(rejections) == {
        2: ("A-1", "finess invalide : '0107\\x0063615' (9 chiffres attendus, A ou B permis en 2e position)"),
        3: ("A-\ufffd2", "order_id invalide : 'A-\\x002' (1 à 32 lettres ASCII, chiffres, « - », « _ » ou « . », commençant par une lettre ou un chiffre)")}
    assert found["order_id"].tolist() == ["A-3"]


def test_order_field_over_csvs_131072_character_limit_is_rejected_in_a_short_message(folder):
    huge = "9" * 200_000
    found, rejections = orders(folder, GOOD.format(id="A-1").replace(",2\n", f",{huge}\n"), GOOD.format(id="A-2"))
    assert rejected(rejections) == {2: ("A-1", f"nombre invalide dans vials : '{'9' * 40}'… (200000 caractères) "
                                               "(entier positif attendu)")}
    assert found["order_id"].tolist() == ["A-2"]


@pytest.mark.parametrize("field, old, new", [
    ("finess", "010763615", "01076361"), ("finess", "010763615", "A10763615"), ("rpps", ",,janssen", ",1234,janssen"),
    ("rpps", ",,janssen", ",1092232256３,janssen"),
])
def test_order_row_with_a_malformed_finess_or_rpps_is_rejected_naming_the_field(folder, field, old, new):
    found, rejections = orders(folder, GOOD.format(id="A-1").replace(old, new), GOOD.format(id="A-2"))
    assert rejected(rejections)[2][1].startswith(f"{field} invalide : ")
    assert found["order_id"].tolist() == ["A-2"]


def test_corsican_finess_and_empty_rpps_are_read(folder):
    found, rejections = orders(folder, GOOD.format(id="A-1").replace("010763615", "2A0763615"))
    assert rejections.empty and found["finess"].tolist() == ["2A0763615"]


@pytest.mark.parametrize("name, old, new, message", [
    ("pharmacies.csv", "Pharmacie de la Gare Martinez", "Pharmacie\x00 de la Gare",
     "pharmacies.csv: line 4, field name: 'Pharmacie\\x00 de la Gare' is not text of at most 500 characters "
     "without control characters"),
    ("pharmacies.csv", ",01,D-PHX-2A", ",20,D-PHX-2A",
     "pharmacies.csv: line 4, field department: '20' is not a French department code "
     "(01 to 95 without 20, 2A, 2B, 971 to 976)"),
    ("pharmacies.csv", ",01,D-PHX-2A", ",2a,D-PHX-2A",
     "pharmacies.csv: line 4, field department: '2a' is not a French department code "
     "(01 to 95 without 20, 2A, 2B, 971 to 976)"),
    ("depots.csv", "D-OCP-34,OCP", "D OCP 34,OCP",
     "depots.csv: line 3, field depot_id: 'D OCP 34' is not a depot id "
     "(1 to 32 ASCII letters, digits, '-', '_' or '.', starting with a letter or digit)"),
    ("depots.csv", '"Mon,Wed,Fri"', '"Mon,Wed,Fri' + ",Mon" * 20 + '"',
     "depots.csv: line 3, field weekdays: 'Mon,Wed,Fri,Mon,Mon,Mon,Mon,Mon,Mon,Mon,'… (91 characters) "
     "is not text of at most 64 characters without control characters"),
    ("professionals.csv", "10922322563,", "1092232256３,",
     "professionals.csv: line 3, field rpps: '1092232256３' is not an RPPS number (11 digits)"),
    ("professionals.csv", ",208476350\n", ',"208476350\n',
     "professionals.csv: line 2: a quoted field does not close on its line, "
     "or its closing quote is not followed by a comma"),
])
def test_register_row_breaking_a_limit_stops_the_run_naming_file_line_and_field(folder, name, old, new, message):
    edit(folder, name, old, new)
    assert error(folder) == message


def test_register_field_over_csvs_131072_character_limit_stops_in_one_short_line(folder):
    edit(folder, "professionals.csv", "Dr Jade Morel", "Dr " + "J" * 200_000)
    assert error(folder) == (f"professionals.csv: line 3, field name: 'Dr {'J' * 37}'… (200003 characters) "
                             "is not text of at most 500 characters without control characters")


def test_unclosed_quote_costs_its_own_order_row_only(folder):
    found, rejections = orders(folder, GOOD.format(id="A-1"), GOOD.format(id='"A-2'), GOOD.format(id="A-3"))
    assert list(rejected(rejections)) == [3] and found["order_id"].tolist() == ["A-1", "A-3"]


# One integer rule in every file: ASCII digits, surrounding spaces and tabs stripped

@pytest.mark.parametrize("vials", ["５", "𝟓", "٥", "5.", "\u00a05", "1234567890"])
def test_vials_in_other_digits_or_too_long_are_rejected(folder, vials):
    found, rejections = orders(folder, GOOD.format(id="A-1").replace(",2\n", f",{vials}\n"))
    assert rejected(rejections)[2][1].startswith("nombre invalide dans vials") and found.empty


@pytest.mark.parametrize("vials", [" 5", "5 ", "\t5", "05"])
def test_vials_with_surrounding_spaces_or_a_leading_zero_are_read(folder, vials):
    found, rejections = orders(folder, GOOD.format(id="A-1").replace(",2\n", f",{vials}\n"))
    assert rejections.empty and found["vials"].tolist() == [5]


@pytest.mark.parametrize("name, old, new", [
    ("depots.csv", ",34,Mon-Fri", ",３４,Mon-Fri"), ("depots.csv", ",34,Mon-Fri", ",+34,Mon-Fri"),
    ("depots.csv", ",34,Mon-Fri", ",99999999999999999999,Mon-Fri"), ("depot_days.csv", "2021-06-25,18", "2021-06-25,-1"),
])
def test_register_capacity_not_in_ascii_digits_stops_the_run(folder, name, old, new):
    edit(folder, name, old, new)
    assert "field capacity_vials" in error(folder)


def test_register_capacity_with_surrounding_spaces_is_read(folder):
    edit(folder, "depots.csv", ",34,Mon-Fri", ", 34 ,Mon-Fri")
    assert load_scenario(folder).depots["capacity_vials"].iloc[0] == 34


# session.toml: identifiers, zone, times, strict numbers

@pytest.mark.parametrize("old, new, message", [
    ('id = "2021-06-14-notice-s1"', 'id = "2021/06/14"',
     "session.toml: field id (line 2): '2021/06/14' is not an identifier"),
    ('id = "2021-06-14-notice-s1"', f'id = "{"s" * 33}"', "session.toml: field id (line 2): "),
    ('zone = "national"', 'zone = ["2a"]',
     "session.toml: field zone (line 9): '2a' is not a French department code (01 to 95 without 20, 2A, 2B, 971 to 976)"),
    ('zone = "national"', 'zone = ["999"]', "session.toml: field zone (line 9): '999' is not a French department code"),
    ('zone = "national"', 'zone = []', "session.toml: field zone (line 9): an empty list of departments; "
                                       'write zone = "national" or list the codes'),
    ('zone = "national"', 'zone = [75, 92]', "session.toml: field zone (line 9): department codes are quoted strings: "
                                             "write '75' for 75"),
    ('confirmation_at = "2021-06-18T09:00:00"', 'confirmation_at = "2021-06-15T09:00:00"',
     "session.toml: field (top level): confirmation_at is before closes_at"),
    ("supply_vials = 170", 'supply_vials = "170"',
     "session.toml: field vaccines.moderna.supply_vials (line 15): Input should be a valid integer (got '170')"),
    ("doses_per_vial = 10\nbox_vials = 10", "doses_per_vial = 10.0\nbox_vials = 10",
     "session.toml: field vaccines.moderna.doses_per_vial (line 13): Input should be a valid integer"),
    ("remainders = false", 'remainders = "false"', "session.toml: field vaccines.moderna.remainders (line 17): "),
    ("supply_vials = 170", "supply_vials = 10000000000",
     "session.toml: field vaccines.moderna.supply_vials (line 15): Input should be less than or equal to 999999999"),
    ("[vaccines.janssen]", '[vaccines."jans sen"]', "session.toml: field vaccines.'jans sen' (line 22): "),
    ('label = "Moderna"', 'label = "Mod\\u0000erna"', "session.toml: field vaccines.moderna.label (line 12): 'Mod\\x00erna'"),
    ('label = "Moderna"', 'label = "Moderna"\nproduct_code = "34009300000"',
     "session.toml: field vaccines.moderna.product_code (line 13): '34009300000' is not a product code (a CIP13 or GTIN"),
    ('label = "Moderna"', 'label = "Moderna"\nproduct_code = "3400930000000 "',
     "session.toml: field vaccines.moderna.product_code (line 13): '3400930000000 ' is not a product code"),
    ('label = "Moderna"', 'label = "Moderna"\nproduct_code = 3400930000000',
     "session.toml: field vaccines.moderna.product_code (line 13): product codes are quoted strings: "
     "write '3400930000000' for 3400930000000"),
])
def test_bad_session_value_is_one_line_naming_field_and_line(folder, old, new, message):
    edit(folder, "session.toml", old, new)
    assert error(folder).startswith(message)


@pytest.mark.parametrize("code", ["34009300", "340093000000", "3400930000000", "03400930000017"])
def test_a_product_code_of_cip13_or_gtin_length_is_read_as_text(folder, code):
    edit(folder, "session.toml", 'label = "Moderna"', f'label = "Moderna"\nproduct_code = "{code}"')
    vaccines = load_scenario(folder).session.vaccines
    assert vaccines["moderna"].product_code == code and vaccines["janssen"].product_code is None


def test_zone_of_quoted_department_codes_is_read(folder):
    edit(folder, "session.toml", 'zone = "national"', 'zone = ["75", "2A", "971", "01"]')
    assert load_scenario(folder).session.zone == ("75", "2A", "971", "01")
