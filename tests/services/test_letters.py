"""What each email says, read back from the stored run (services/letters.py): depots named, and a
redistribution (R10) on the giving line, on the receiver's email and in the box of what changed."""

from __future__ import annotations

import datetime as dt

from pipeline.adapters.db import lines, outbox, runs as run_rows, sessions
from pipeline.domain.changes import Changes
from pipeline.domain.confirmation import Gift
from pipeline.domain.rules import NAMED_KINDS
from pipeline.services import confirmations, runs
from pipeline.services.letters import confirmations as letters
from pipeline.services.reallocation import request_reallocation
from tests.services.conftest import CLOSED

SENDER = "Vaccination <noreply@vialflow.example.fr>"
LATER = CLOSED + dt.timedelta(days=9)
EFFECTIVE = dt.date(2021, 6, 25)


def emails(db, run: int) -> dict:
    with db.connect() as c:
        row = run_rows.run_row(c, run)
        return {letter.recipient_id: letter for letter in letters(c, row, outbox.outbox_rows(c, run), SENDER)}


def a_week_old_named_line(db, run: int) -> tuple[dict, dict]:
    """A doctor's line delivered a week or more before EFFECTIVE, and another professional of its officine."""
    with db.connect() as c:
        session_id = run_rows.run_row(c, run).session_id
        read = lines.read(c, run, session_id)
        people = sessions.registers(c, session_id, "professionals")
    early = read.deliveries[read.deliveries["delivery_date"] <= EFFECTIVE - dt.timedelta(days=7)]
    doctors = read.lines[read.lines["order_id"].isin(early["order_id"]) & (read.lines["effector"] == "medecin")]
    for line in doctors.sort_values("order_id").to_dict("records"):
        others = people[(people["finess"] == line["finess"]) & (people["rpps"] != line["rpps"])
                        & people["kind"].isin(NAMED_KINDS)]
        if len(others):
            return line, others.sort_values("rpps").iloc[0].to_dict()
    raise AssertionError("the scenario has no doctor's line delivered early with a colleague at its officine")


def test_r8_each_delivery_of_each_email_names_the_depot_s_wholesaler(db, prepared):
    with db.connect() as c:
        depots = sessions.registers(c, run_rows.run_row(c, prepared).session_id, "depots")
    wholesalers = set(depots["wholesaler"])
    for letter in emails(db, prepared).values():
        for line in letter.lines:
            assert len(line.depots) == len(line.deliveries)
            assert all(any(depot.startswith(f"{w} (dépôt ") for w in wholesalers) for depot in line.depots)


def test_r10_a_redistribution_is_on_the_giving_line_the_receiver_s_line_and_the_box_naming_the_officine(
        db, scenario, prepared):
    line, to = a_week_old_named_line(db, prepared)
    changes = Changes.model_validate({"effective": EFFECTIVE.isoformat(), "redistribution": [
        {"order_id": line["order_id"], "vials": 2, "to_rpps": to["rpps"]}]})
    run, _ = request_reallocation(db, scenario.session.id, changes, "Opératrice", "non récupérés", LATER)
    for step in (runs.allocate_run, runs.schedule_run, confirmations.prepare_confirmations):
        assert step(db, run, LATER) == runs.DONE
    found = emails(db, run)
    with db.connect() as c:
        officine = sessions.contacts(c, "pharmacies", scenario.session.id, [line["finess"]])[line["finess"]]["name"]
    assert {line["finess"], line["rpps"], to["rpps"]} <= set(found)
    # the giving line, on the officine's email and the giving doctor's
    for recipient in (line["finess"], line["rpps"]):
        [giving] = [l for l in found[recipient].lines if l.order_id == line["order_id"]]
        assert giving.given == (Gift(2, to["rpps"], to["name"], to["kind"]),)
    # the receiver's own line of received vials, dated by the redistribution, from the officine named
    [received] = [l for l in found[to["rpps"]].lines if l.received_from]
    assert (received.order_id, received.rpps, received.deliveries) == (line["order_id"], to["rpps"], ((EFFECTIVE, 2),))
    assert received.received_from == f"{officine} (FINESS {line['finess']})"
    assert received.redistribution_from == line["finess"]
    assert any(f"à retirer à l'officine {officine} (FINESS {line['finess']})" in said
               for said in found[to["rpps"]].changes)
    assert any("2 flacons non récupérés redistribués" in said and to["rpps"] in said
               for said in found[line["finess"]].changes)


def test_r10_a_later_version_keeps_the_redistribution_dated_by_the_version_that_made_it(db, scenario, prepared):
    line, to = a_week_old_named_line(db, prepared)
    first = Changes.model_validate({"effective": EFFECTIVE.isoformat(), "redistribution": [
        {"order_id": line["order_id"], "vials": 1, "to_rpps": to["rpps"]}]})
    run, _ = request_reallocation(db, scenario.session.id, first, "Opératrice", "non récupérés", LATER)
    for step in (runs.allocate_run, runs.schedule_run, confirmations.prepare_confirmations):
        step(db, run, LATER)
    second = Changes.model_validate({"effective": "2021-06-28", "redistribution": [
        {"order_id": line["order_id"], "vials": 1, "to_rpps": to["rpps"]}]})
    run, _ = request_reallocation(db, scenario.session.id, second, "Opératrice", "encore", LATER)
    for step in (runs.allocate_run, runs.schedule_run, confirmations.prepare_confirmations):
        step(db, run, LATER)
    received = [l for l in emails(db, run)[to["rpps"]].lines if l.received_from]
    assert [l.deliveries for l in received] == [((EFFECTIVE, 1),), ((dt.date(2021, 6, 28), 1),)]


def test_r9_each_line_carries_its_vaccine_s_doses_per_vial_from_the_session(db, scenario, prepared):
    per_vial = {key: vaccine.doses_per_vial for key, vaccine in scenario.session.vaccines.items()}
    letters_ = emails(db, prepared).values()
    assert letters_
    for letter in letters_:
        for line in letter.lines:
            assert line.doses_per_vial == per_vial[line.vaccine]
            assert line.doses(line.allocated) == line.allocated * per_vial[line.vaccine]


def test_r2_the_console_s_copy_heads_a_line_for_an_unknown_professional_as_such(db, scenario):
    import dataclasses

    import pandas as pd

    from pipeline.services import messages

    orders = scenario.orders
    first = orders[orders["effector"] == "pharmacien"].iloc[0]
    unknown = pd.DataFrame([first.to_dict() | {"order_id": "A-NORPPS", "effector": "medecin", "rpps": ""},
                            first.to_dict() | {"order_id": "A-NOTREG", "effector": "medecin", "rpps": "10000000001"}])
    mine = dataclasses.replace(scenario, orders=pd.concat([orders, unknown.astype(orders.dtypes.to_dict())],
                                                          ignore_index=True))
    run = runs.close_session(db, runs.store_scenario(db, mine, CLOSED), CLOSED)
    for step in (runs.allocate_run, runs.schedule_run, confirmations.prepare_confirmations):
        step(db, run, CLOSED)
    with db.connect() as c:
        rows = outbox.outbox_rows(c, run)
    [outbox_id] = rows.loc[rows["recipient_id"] == first["finess"], "id"].tolist()
    text = messages.message(db, int(outbox_id), SENDER)["text"].replace("\r\n", "\n")
    assert "== Pour un professionnel non reconnu (médecin, sans numéro RPPS) ==\n\n" in text
    assert "== Pour un professionnel non reconnu (médecin, RPPS 10000000001) ==\n\n" in text
    assert "Pour RPPS" not in text and "RPPS )" not in text
