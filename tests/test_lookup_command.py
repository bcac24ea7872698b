"""`vialflow lookup` as a support adviser runs it: French, dates in words, Paris time; JSON keys kept."""

from __future__ import annotations

import json

from tests.conftest import vialflow

OFFICINE = "690012345"  # Pharmacie de la Gare Morel, in the shipped fixture
JSON_KEYS = ["session_id", "title", "closes_at", "state", "officine", "runs"]  # what the console's API returns


def test_r12_lookup_speaks_french_with_closing_and_sending_times_in_paris_time(fixture_run):
    done = vialflow("lookup", OFFICINE, "--out", str(fixture_run))
    assert done.returncode == 0, done.stderr
    text = done.stdout
    assert "Clôture   mardi 15 juin 2021 à 23:00 (heure de Paris)" in text  # closes_at is 21:00 UTC
    assert "Pharmacie de la Gare Morel" in text and "Dépôt     D-OCP-69  OCP Répartition, dépôt 69" in text
    assert "jeudi 17 juin 2021 : " in text and " sur " in text and "1re injection" in text
    assert "Emails de la version 1" in text and "envoyé" in text
    for english in ("UTC", "Closes", "Run 1", " of ", "Deliveries", "Emails of run", "sent\n"):
        assert english not in text, english
    assert max(len(row) for row in text.splitlines()) <= 80


def test_r12_lookup_json_keeps_its_keys(fixture_run):
    done = vialflow("lookup", OFFICINE, "--out", str(fixture_run), "--json")
    assert done.returncode == 0, done.stderr
    [session] = json.loads(done.stdout)["sessions"]
    assert set(JSON_KEYS) <= set(session) and session["closes_at"] == "2021-06-15T21:00:00+00:00"
    assert session["timezone"] == "Europe/Paris"
    run = session["runs"][0]
    assert {"version", "created_at", "operator", "reason", "step", "lines", "emails", "redistributions"} <= set(run)
    assert {"date", "vials", "depot_id", "status"} == set(run["lines"][0]["deliveries"][0])


def test_r12_lookup_of_an_unknown_officine_says_so_in_one_french_line(fixture_run):
    done = vialflow("lookup", "123456789", "--out", str(fixture_run))
    assert done.returncode != 0
    assert done.stderr == "vialflow: Aucune officine de numéro FINESS 123456789 dans aucune session enregistrée.\n"
