"""The pipeline's steps as services: each one idempotent, gated on the step before, storing all or nothing."""

from __future__ import annotations

import pandas as pd
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from pipeline.adapters.db import lines, outbox, runs as run_rows, sessions
from pipeline.adapters.db.tables import Base
from pipeline.domain.changes import RunChanges
from pipeline.domain.rules import NAMED_KINDS
from pipeline.domain.vocabulary import RunStep
from pipeline.services import ServiceError, confirmations, runs
from pipeline.services.refusals import SessionLoadedOtherwise, UnknownRun, UnknownSession
from tests.services.conftest import CLOSED

T = Base.metadata.tables


def count(db, table: str, run: int) -> int:
    with db.connect() as c:
        return c.execute(select(func.count()).select_from(T[table]).where(T[table].c.run_id == run)).scalar_one()


def test_r1_closing_a_session_twice_opens_one_run(db, scenario, closed):
    assert runs.close_session(db, scenario.session.id, CLOSED) == closed
    with db.connect() as c:
        assert c.execute(select(func.count()).select_from(T["runs"])).scalar_one() == 1
        assert sessions.session_row(c, scenario.session.id).state == "closed"


def test_r1_closing_an_unknown_session_is_refused_in_one_sentence(db):
    with pytest.raises(UnknownSession) as refused:
        runs.close_session(db, "nope", CLOSED)
    assert (refused.value.session_id, refused.value.status, str(refused.value)) == ("nope", 404,
                                                                                  "Session inconnue : nope.")


def test_loading_the_same_inputs_again_changes_nothing_and_other_inputs_are_refused(db, scenario, closed):
    assert runs.store_scenario(db, scenario, CLOSED) == scenario.session.id
    fewer = scenario.__class__(**{**scenario.__dict__, "orders": scenario.orders.iloc[1:]})
    with pytest.raises(SessionLoadedOtherwise) as refused:
        runs.store_scenario(db, fewer, CLOSED)
    assert refused.value.session_id == scenario.session.id and "déjà chargée avec d'autres données" in str(refused.value)


def test_a_step_run_twice_stores_its_work_once(db, scenario, closed):
    assert runs.allocate_run(db, closed, CLOSED) == runs.DONE
    stored = count(db, "decisions", closed)
    assert stored == len(scenario.orders)
    assert runs.allocate_run(db, closed, CLOSED) == runs.ALREADY
    assert count(db, "decisions", closed) == stored


def test_each_step_waits_for_the_one_before_and_stores_nothing_meanwhile(db, closed):
    assert runs.schedule_run(db, closed, CLOSED) == runs.WAITING
    assert confirmations.prepare_confirmations(db, closed, CLOSED) == runs.WAITING
    assert count(db, "deliveries", closed) == 0 and count(db, "outbox", closed) == 0
    runs.allocate_run(db, closed, CLOSED)
    assert confirmations.prepare_confirmations(db, closed, CLOSED) == runs.WAITING
    assert runs.schedule_run(db, closed, CLOSED) == runs.DONE
    assert confirmations.prepare_confirmations(db, closed, CLOSED) == runs.DONE


def test_r8_every_allocated_vial_is_scheduled_or_pending(db, closed):
    runs.allocate_run(db, closed, CLOSED)
    runs.schedule_run(db, closed, CLOSED)
    with db.connect() as c:
        read = lines.read(c, closed, run_rows.run_row(c, closed).session_id)
    delivered = read.deliveries.groupby("order_id")["vials"].sum()
    allocated = read.lines.set_index("order_id")["allocated"]
    assert (allocated[allocated > 0] == delivered.reindex(allocated[allocated > 0].index)).all()
    assert set(delivered.index) <= set(allocated[allocated > 0].index)


def test_a_step_of_an_unknown_run_is_refused(db):
    with pytest.raises(UnknownRun) as refused:
        runs.allocate_run(db, 99, CLOSED)
    assert refused.value.run == 99 and isinstance(refused.value, ServiceError)


def test_r9_the_outbox_has_one_row_per_officine_that_ordered_and_per_named_professional(db, scenario, closed):
    runs.allocate_run(db, closed, CLOSED)
    runs.schedule_run(db, closed, CLOSED)
    confirmations.prepare_confirmations(db, closed, CLOSED)
    orders = scenario.orders
    officines = set(orders["finess"]) & set(scenario.pharmacies["finess"])
    named = set(orders.loc[orders["effector"].isin(NAMED_KINDS), "rpps"]) & set(scenario.professionals["rpps"])
    with db.connect() as c:
        written = outbox.outbox_rows(c, closed)
    assert sorted(written["recipient_id"]) == sorted(officines | named)
    assert set(written["state"]) == {"pending"}
    assert written["message_id"].is_unique
    kinds = dict(zip(written["recipient_id"], written["recipient_kind"]))
    assert {kinds[f] for f in officines} == {"officine"}
    assert {kinds[r] for r in named} <= set(NAMED_KINDS)


def test_a_failure_for_good_is_kept_on_the_run_with_its_step_for_those_who_wait(db, scenario, closed):
    runs.record_failure(db, RunStep.ALLOCATE, closed, "OperationalError: the database went away")
    state = runs.progress(db, scenario.session.id)
    assert state["run"] == closed
    assert state["error"] == "OperationalError: the database went away"
    assert state["failed_step"] is RunStep.ALLOCATE


def test_the_schema_refuses_a_failed_step_or_an_email_state_outside_the_vocabulary(db, closed):
    with pytest.raises(IntegrityError), db.begin() as c:
        c.execute(text("UPDATE runs SET failed_step = 'allocating' WHERE id = :id"), {"id": closed})
    runs.allocate_run(db, closed, CLOSED)
    runs.schedule_run(db, closed, CLOSED)
    confirmations.prepare_confirmations(db, closed, CLOSED)
    with pytest.raises(IntegrityError), db.begin() as c:
        c.execute(text("UPDATE outbox SET state = 'queued' WHERE run_id = :id"), {"id": closed})


def test_progress_names_the_last_step_a_run_has_stored(db, scenario, closed):
    assert runs.progress(db, scenario.session.id)["done"] is RunStep.CLOSE
    runs.allocate_run(db, closed, CLOSED)
    assert runs.progress(db, scenario.session.id)["done"] is RunStep.ALLOCATE
    runs.schedule_run(db, closed, CLOSED)
    confirmations.prepare_confirmations(db, closed, CLOSED)
    assert runs.progress(db, scenario.session.id)["done"] is RunStep.PREPARE


def test_depot_day_changes_win_over_the_session_s_for_the_same_day():
    session_days = pd.DataFrame({"depot_id": ["D-1", "D-2"], "date": [pd.Timestamp("2021-06-21").date()] * 2,
                                 "capacity_vials": [100, 50]})
    changed = runs.depot_days_with_changes(session_days, RunChanges.model_validate(
        {"effective": "2021-06-21", "depot_days": [{"depot_id": "D-1", "date": "2021-06-21", "capacity_vials": 0}]}))
    assert dict(zip(changed["depot_id"], changed["capacity_vials"])) == {"D-1": 0, "D-2": 50}
