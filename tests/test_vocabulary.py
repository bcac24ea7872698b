"""One vocabulary: every code has its short and long French label, once, and the codes are the contract's,
the allocation core's and the schema's."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest

from pipeline.domain import allocate, rules
from pipeline.domain.schedule import DELIVERY_COLUMNS
from pipeline.domain.vocabulary import (SETTLED, VOCABULARY, Delivery, EmailState, Injection, Kind, Reason, RunStep,
                                        Status)
from pipeline.services import chain

ROOT = Path(__file__).resolve().parents[1]
MIGRATION = ROOT / "pipeline" / "adapters" / "db" / "migrations" / "versions" / "0007_vocabulary.py"


@pytest.mark.parametrize("vocabulary", VOCABULARY, ids=lambda v: v.__name__)
def test_every_code_has_a_short_and_a_long_french_label_and_no_two_codes_share_one(vocabulary):
    for code in vocabulary:
        assert code.short.strip() and code.long.strip(), code
        assert code.short == code.short.strip() and not code.long.endswith("."), code  # said within sentences
        assert code == code.value and str(code) == code.value  # the code itself is what files and tables carry
    shorts = [code.short for code in vocabulary]
    assert len(set(shorts)) == len(shorts), shorts


def test_the_codes_are_the_contract_s_in_its_order_and_the_core_takes_them_from_the_vocabulary():
    assert [s.value for s in Status] == ["served", "partial", "refused"]
    # ok, the three cuts, then the outright refusals in the order the contract checks them
    assert [r.value for r in Reason] == ["ok", "cap", "unit", "supply", "cancelled", "window", "unknown_pharmacy",
                                         "zone", "eligibility", "unknown_professional", "not_attached"]
    assert [k.value for k in Kind] == ["pharmacien", "medecin", "medecin_travail", "sage_femme", "infirmier"]
    assert [i.value for i in Injection] == ["first", "second"]
    assert allocate.REASONS == tuple(Reason) and allocate.OUTRIGHT == allocate.REASONS[4:]
    assert set(allocate.STATUSES) == set(Status)
    assert rules.KINDS == tuple(Kind) and rules.INJECTIONS == tuple(Injection)
    assert rules.PROFESSIONAL_KINDS == ("medecin", "medecin_travail", "sage_femme", "infirmier")
    assert "status" in DELIVERY_COLUMNS and [d.value for d in Delivery] == ["scheduled", "pending"]


def test_the_schema_s_constraints_list_the_vocabulary_s_email_states_and_steps():
    spec = importlib.util.spec_from_file_location("migration_0007", MIGRATION)
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    assert migration.EMAIL_STATES == tuple(state.value for state in EmailState)
    assert migration.RUN_STEPS == tuple(step.value for step in RunStep)


def test_settled_states_are_the_terminal_ones_and_the_chain_s_steps_are_run_steps():
    assert {state for state in EmailState if state.settled} == set(SETTLED) == {"sent", "failed", "unknown"}
    assert [step.code for step in chain.RUN] == [RunStep.CLOSE, RunStep.ALLOCATE, RunStep.SCHEDULE, RunStep.PREPARE,
                                                 RunStep.EXPORT]


def test_a_code_unknown_to_the_vocabulary_is_shown_as_written_and_a_sentence_reads_as_one():
    assert Reason.labelled("something_new") == "something_new" and Reason.labelled(None) == ""
    assert Reason.labelled("cap") == "plafond atteint" and Status.labelled("served", long=True) == "servie en totalité"
    assert Reason.CAP.sentence.startswith("Plafond par professionnel atteint") and Reason.CAP.sentence.endswith(".")


def label_dicts(source: str, name: str) -> list[str]:
    """Dict literals of `source` mapping three or more codes of one vocabulary enum to texts: labels written
    outside the vocabulary, which would one day disagree with it."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Dict):
            continue
        keys = [k.value for k in node.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)]
        texts = [v for v in node.values if isinstance(v, ast.JoinedStr) or isinstance(getattr(v, "value", None), str)]
        if len(keys) < 3 or len(keys) != len(node.keys) or len(texts) != len(node.values):
            continue
        found += [f"{name}:{node.lineno} ({vocabulary.__name__})" for vocabulary in VOCABULARY
                  if set(keys) <= {code.value for code in vocabulary}]
    return found


def test_no_module_keeps_labels_of_its_own_for_the_vocabulary_s_codes():
    sources = [path for path in (ROOT / "pipeline").rglob("*.py")
               if path.name != "vocabulary.py" and "migrations" not in path.parts]
    assert [found for path in sources for found in label_dicts(path.read_text(encoding="utf-8"), path.name)] == []


def test_the_checker_finds_a_label_dict_and_leaves_other_dicts_alone():
    assert label_dicts('STATUSES = {"served": "servie", "partial": "partielle", "refused": "refusée"}', "m") == \
        ["m:1 (Status)"]
    assert label_dicts('FIELDS = {"effective": "date d\'effet", "supply": "stock", "cancel": "lignes"}', "m") == []
    assert label_dicts('MIX = {"medecin": 0.45, "sage_femme": 0.13, "infirmier": 0.42}', "m") == []
