"""Support look-up (R12) and the list of runs (R11), on a database built by the real services."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
import logging
from unittest.mock import ANY

import pandas as pd
import pytest
from rich.console import Console

from pipeline.services import confirmations, runs as services
from pipeline.adapters.files.scenario import load_scenario
from pipeline.adapters.db import make_engine, migrate
from pipeline.adapters.db.tables import Base
from tests.conftest import EXAMPLES
from pipeline.domain.outbox import message_id
from pipeline.entrypoints.views import lookup_table, runs_table
from pipeline.services.refusals import OfficineNotFound, UnknownSession
from pipeline.services.support import list_runs, lookup
from pipeline.domain.changes import RunChanges
from pipeline.domain.vocabulary import RunStep

EXAMPLE = EXAMPLES / "notice-small"
S1 = "2021-06-14-notice-s1"
S2 = "2021-06-16-notice-s2"  # a later session without the officine GARE
FINESS = "091009232"  # split deliveries, pending remainders, named professionals, refused lines
NAME = "Pharmacie du Centre Fournier"
GARE = "010763615"
UNREGISTERED = "056764589"  # ordered, but not in the pharmacies register
CANCELLED = "A-743616"  # withdrawn in version 2
CLOSED = dt.datetime(2021, 6, 16, 5, tzinfo=dt.timezone.utc)
REALLOCATED = dt.datetime(2021, 6, 17, 14, tzinfo=dt.timezone.utc)


def expected(table: str, finess: str | None = None) -> pd.DataFrame:
    frame = pd.read_csv(EXAMPLE / "expected" / table, dtype=str, keep_default_na=False)
    return frame if finess is None else frame[frame["finess"] == finess].reset_index(drop=True)


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    """Session 1 closed, allocated, scheduled and prepared (version 1), then a version 2 that
    cancels one line of FINESS; session 2 (without GARE) closes a day later and is not allocated."""
    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('support')}/v.db")
    migrate(engine)
    scenario = load_scenario(EXAMPLE)
    run = services.close_session(engine, services.store_scenario(engine, scenario, CLOSED), CLOSED)
    services.allocate_run(engine, run, CLOSED)
    services.schedule_run(engine, run, CLOSED)
    confirmations.prepare_confirmations(engine, run, CLOSED)
    with engine.begin() as c:
        c.execute(Base.metadata.tables["runs"].insert().values(
            session_id=S1, version=2, operator="Camille (support)", reason="order withdrawn by phone",
            changes={"cancel": [CANCELLED]}, input_hash="f" * 64, created_at=REALLOCATED))
    second = services.run_id(engine, S1, 2)
    services.allocate_run(engine, second, REALLOCATED)
    services.schedule_run(engine, second, REALLOCATED)
    confirmations.prepare_confirmations(engine, second, REALLOCATED)
    later = dataclasses.replace(
        scenario, session=scenario.session.model_copy(update={"id": S2, "closes_at": dt.datetime(2021, 6, 16, 23)}),
        pharmacies=scenario.pharmacies[scenario.pharmacies["finess"] != GARE],
        orders=scenario.orders[scenario.orders["finess"] != GARE])
    services.close_session(engine, services.store_scenario(engine, later, CLOSED), CLOSED)
    return engine


def run_of(data: dict, session_id: str, version: int) -> dict:
    session = next(s for s in data["sessions"] if s["session_id"] == session_id)
    return next(r for r in session["runs"] if r["version"] == version)


def rendered(renderable, width: int = 80) -> str:
    console = Console(record=True, width=width, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


def test_r12_lookup_shows_the_officine_with_its_depot_and_wholesaler(engine):
    session = lookup(engine, FINESS, S1)["sessions"][0]
    assert session["officine"] == {
        "finess": FINESS, "name": NAME, "email": "officine.091009232@pharma.example.fr", "department": "09",
        "depot_id": "D-PHX-2A", "depot_name": "Phoenix Pharma, dépôt 2A", "wholesaler": "Phoenix Pharma"}
    assert (session["title"], session["state"], session["closes_at"]) == (
        "Commande de vaccins les 14 et 15 juin", "closed", "2021-06-15T21:00:00+00:00")


def test_r12_lookup_lines_are_the_expected_allocations_in_submission_order(engine):
    lines = run_of(lookup(engine, FINESS, S1), S1, 1)["lines"]
    want = expected("allocations.csv", FINESS)
    assert [line["order_id"] for line in lines] == want["order_id"].tolist()
    for line, row in zip(lines, want.to_dict("records")):
        for field in ("effector", "rpps", "vaccine", "injection", "status", "reason"):
            assert line[field] == row[field], (line["order_id"], field)
        assert (line["requested"], line["allocated"]) == (int(row["requested"]), int(row["allocated"]))
    ranks = [line["rank"] for line in lines]
    assert ranks == sorted(ranks) and len(set(ranks)) == len(ranks)


def test_r12_lookup_shows_planned_deliveries_with_exact_volumes(engine):
    lines = run_of(lookup(engine, FINESS, S1), S1, 1)["lines"]
    for line in lines:
        assert sum(d["vials"] for d in line["deliveries"]) == line["allocated"], line["order_id"]
    got = sorted((line["order_id"], d["date"] or "", d["vials"], d["depot_id"], d["status"])
                 for line in lines for d in line["deliveries"])
    want = sorted((r.order_id, r.delivery_date, int(r.vials), r.depot_id, r.status)
                  for r in expected("deliveries.csv", FINESS).itertuples())
    assert got == want
    split = next(line for line in lines if line["order_id"] == CANCELLED)["deliveries"]
    assert [(d["date"], d["vials"]) for d in split] == [("2021-06-23", 4), ("2021-06-24", 2)]
    pending = next(line for line in lines if line["order_id"] == "A-820407")["deliveries"]
    assert pending == [{"date": None, "vials": 2, "depot_id": "D-PHX-2A", "status": "pending"}]


def test_r12_lookup_names_the_professional_of_a_line_and_no_one_for_the_officine_itself(engine):
    lines = {line["order_id"]: line for line in run_of(lookup(engine, FINESS, S1), S1, 1)["lines"]}
    assert (lines["A-590765"]["rpps"], lines["A-590765"]["professional"]) == ("10911160950", "Dr Théo Le Goff")
    assert lines["A-301158"]["professional"] == "Manon Fournier"
    assert (lines["A-411156"]["rpps"], lines["A-411156"]["professional"]) == ("", None)


def test_r12_lookup_lists_the_email_of_the_run_sent_to_the_officine(engine):
    data = lookup(engine, FINESS, S1)
    assert run_of(data, S1, 1)["emails"] == [{
        "message_id": message_id(S1, 1, FINESS), "state": "pending", "attempts": 0,
        "sent_at": None, "replaces": None, "detail": None, "outbox_id": ANY, "recipient_id": FINESS}]
    assert run_of(data, S1, 2)["emails"] == [{  # R11: its lines changed, so "annule et remplace"
        "message_id": message_id(S1, 2, FINESS), "state": "pending", "attempts": 0,
        "sent_at": None, "replaces": message_id(S1, 1, FINESS), "detail": None, "outbox_id": ANY,
        "recipient_id": FINESS}]
    assert run_of(lookup(engine, GARE, S1), S1, 2)["emails"] == []  # nothing changed for it


def test_r11_lookup_shows_each_run_newest_first_with_who_when_and_why(engine):
    runs = lookup(engine, FINESS, S1)["sessions"][0]["runs"]
    assert [(r["version"], r["operator"], r["reason"], r["created_at"], r["step"]) for r in runs] == [
        (2, "Camille (support)", "order withdrawn by phone", "2021-06-17T14:00:00+00:00", RunStep.PREPARE),
        (1, "scheduler", "session close", "2021-06-16T05:00:00+00:00", RunStep.PREPARE)]
    withdrawn = next(line for line in runs[0]["lines"] if line["order_id"] == CANCELLED)
    assert (withdrawn["allocated"], withdrawn["status"], withdrawn["reason"], withdrawn["deliveries"]) == (
        0, "refused", "cancelled", [])
    later = next(line for line in runs[0]["lines"] if line["order_id"] == "A-820407")
    assert later["allocated"] == sum(d["vials"] for d in later["deliveries"]) == 8  # the freed cap


def test_r12_lookup_without_a_session_lists_every_session_newest_first_by_close(engine):
    data = lookup(engine, FINESS)
    assert [s["session_id"] for s in data["sessions"]] == [S2, S1]
    assert [r["version"] for r in data["sessions"][0]["runs"]] == [1]
    assert [s["session_id"] for s in lookup(engine, GARE)["sessions"]] == [S1]


def test_r12_lookup_of_an_officine_missing_from_the_register_still_shows_its_refused_line(engine):
    session = lookup(engine, UNREGISTERED, S1)["sessions"][0]
    assert session["officine"] is None
    (line,) = run_of({"sessions": [session]}, S1, 1)["lines"]
    assert (line["order_id"], line["reason"], line["deliveries"]) == ("A-543727", "unknown_pharmacy", [])
    assert "absente du registre des officines de la session" in rendered(lookup_table(lookup(engine, UNREGISTERED, S1)))


def test_r12_lookup_of_an_unknown_finess_says_so_in_one_sentence(engine):
    with pytest.raises(OfficineNotFound) as refused:
        lookup(engine, "123456789")
    assert (refused.value.finess, refused.value.session_id, refused.value.status) == ("123456789", None, 404)
    assert str(refused.value) == "Aucune officine de numéro FINESS 123456789 dans aucune session enregistrée."
    with pytest.raises(OfficineNotFound) as refused:
        lookup(engine, GARE, S2)
    assert str(refused.value) == f"Aucune officine de numéro FINESS {GARE} dans la session {S2}."


def test_r12_lookup_in_an_unknown_session_says_so(engine):
    with pytest.raises(UnknownSession) as refused:
        lookup(engine, FINESS, "2099-01-01")
    assert str(refused.value) == "Session inconnue : 2099-01-01."


def test_r11_list_runs_gives_every_version_oldest_first_with_its_counts(engine):
    first, second = list_runs(engine, S1)
    allocations, deliveries = expected("allocations.csv"), expected("deliveries.csv")
    vials = deliveries["vials"].astype(int)
    assert (first["version"], first["operator"], first["changes"], first["error"]) == (1, "scheduler", {}, None)
    assert first["counts"] == {
        "lines": len(allocations), "allocated_vials": int(allocations["allocated"].astype(int).sum()),
        "scheduled_vials": int(vials[deliveries["status"] == "scheduled"].sum()),
        "pending_vials": int(vials[deliveries["status"] == "pending"].sum()),
        "emails": {"pending": confirmations.outbox_counts(engine, services.run_id(engine, S1, 1))["pending"]}}
    assert first["prepared_at"] == "2021-06-16T05:00:00+00:00" and first["sending_at"] is None
    assert len(first["input_hash"]) == 12
    assert (second["version"], second["input_hash"]) == (2, "f" * 12)
    assert RunChanges.model_validate(second["changes"]) == RunChanges(cancel=(CANCELLED,))
    # The withdrawn line's 6 vials go back under the officine's cap, to its later janssen lines.
    assert (second["counts"]["lines"], second["counts"]["allocated_vials"]) == (
        first["counts"]["lines"], first["counts"]["allocated_vials"])
    # R11: only recipients whose lines changed are written to, so fewer than at close.
    assert second["counts"]["emails"] == confirmations.outbox_counts(engine, services.run_id(engine, S1, 2))
    assert 0 < second["counts"]["emails"]["pending"] < first["counts"]["emails"]["pending"]
    assert second["prepared_at"] == "2021-06-17T14:00:00+00:00"
    (closed_only,) = list_runs(engine, S2)
    assert (closed_only["allocated_at"], closed_only["counts"]["lines"], closed_only["counts"]["emails"]) == (
        None, 0, {})


def test_r11_list_runs_of_an_unknown_session_says_so(engine):
    with pytest.raises(UnknownSession) as refused:
        list_runs(engine, "2099-01-01")
    assert refused.value.session_id == "2099-01-01"


def test_r12_lookup_and_runs_survive_a_json_round_trip(engine):
    for data in (lookup(engine, FINESS), lookup(engine, UNREGISTERED), list_runs(engine, S1)):
        assert json.loads(json.dumps(data)) == data


def test_r12_lookup_table_shows_dates_volumes_pending_and_emails_uncut_in_80_columns(engine):
    text = rendered(lookup_table(lookup(engine, FINESS, S1)))
    for shown in (NAME, "Phoenix Pharma", "A-743616", "mercredi 23 juin 2021 : 4", "jeudi 24 juin 2021 : 2",
                  "en attente : 2", "6 sur 6", "0 sur 20", "10911160950", "Camille (support)",
                  "Version 1", "Version 2",
                  message_id(S1, 1, FINESS), message_id(S1, 2, FINESS),
                  "annule et remplace"):
        assert shown in text, shown
    assert max(len(row) for row in text.splitlines()) <= 80


def test_r12_lookup_table_speaks_french_with_dates_in_words_and_instants_in_paris_time(engine):
    text = rendered(lookup_table(lookup(engine, FINESS, S1)), width=120)
    assert "Clôture   mardi 15 juin 2021 à 23:00 (heure de Paris), session close" in text  # 21:00 UTC
    assert "Version 2 · jeudi 17 juin 2021 à 16:00 (heure de Paris) · Camille (support)" in text  # 14:00 UTC
    assert "Dépôt" in text and "Phoenix Pharma, dépôt" in text
    assert "AstraZeneca" in text and "1re injection" in text and "médecin" in text and "Dr Théo Le Goff" in text
    for english in ("UTC", "Closes", "Run ", " of ", "Deliveries", "Status", "Order", "Emails of run"):
        assert english not in text, english


def test_r12_lookup_json_keeps_its_keys_and_adds_the_session_s_time_zone(engine):
    session = lookup(engine, FINESS, S1)["sessions"][0]
    assert list(session)[:4] == ["session_id", "title", "closes_at", "state"]
    assert {"officine", "runs"} <= set(session)
    assert session["closes_at"] == "2021-06-15T21:00:00+00:00" and session["timezone"] == "Europe/Paris"
    assert session["vaccines"]["astrazeneca"].startswith("AstraZeneca")


def test_r12_lookup_table_prints_names_as_written_not_as_markup():
    officine = {"finess": FINESS, "name": "Pharmacie [bold]Crochet[/bold]", "email": "a@b.fr", "department": "09",
                "depot_id": "D", "depot_name": None, "wholesaler": None}
    run = {"version": 3, "created_at": None, "operator": "[o]", "reason": "r", "step": "prepared", "lines": [],
           "emails": [], "redistributions": [{"order_id": "A-1", "vials": 2, "to_rpps": "10911160950"}]}
    data = {"finess": FINESS, "sessions": [{"session_id": "s", "title": "", "closes_at": None, "state": "closed",
                                            "officine": officine, "runs": [run]}]}
    text = rendered(lookup_table(data))
    assert "Pharmacie [bold]Crochet[/bold]" in text and "· [o] ·" in text
    assert "Redistribution : 2 flacons de la commande A-1 au professionnel RPPS 10911160950" in text


def test_r11_runs_table_shows_every_version_and_its_counts_in_french_and_paris_time(engine):
    text = rendered(runs_table(list_runs(engine, S1)), width=120)
    for shown in ("order withdrawn by phone", "session close", "lignes annulées : A-743616", "à envoyer : ",
                  "ffffffffffff", "Version 2 · jeudi 17 juin 2021 à 16:00 (heure de Paris)",
                  "préparation des emails : jeudi 17 juin 2021 à 16:00:00", "Motif", "Modifications", "Étapes"):
        assert shown in text, shown
    for english in ("Run ", "UTC", "Reason", "Changes", "Steps", "pending", "prepared", "allocated"):
        assert english not in text, english


def test_r12_lookup_logs_no_name_or_address(engine, caplog):
    with caplog.at_level(logging.DEBUG):
        lookup_table(lookup(engine, FINESS))
        runs_table(list_runs(engine, S1))
    assert not [r for r in caplog.records if NAME in r.getMessage() or "@" in r.getMessage()]
