"""The pipeline's steps as services: each one idempotent, gated on the step before, storing all or nothing."""

from __future__ import annotations

import pandas as pd
import pytest
from sqlalchemy import func, select

from pipeline.adapters.db import queries
from pipeline.adapters.db.tables import Base
from pipeline.domain.rules import NAMED_KINDS
from pipeline.services import ServiceError, confirmations, runs
from tests.services.conftest import CLOSED

T = Base.metadata.tables


def count(db, table: str, run: int) -> int:
    with db.connect() as c:
        return c.execute(select(func.count()).select_from(T[table]).where(T[table].c.run_id == run)).scalar_one()


def test_r1_closing_a_session_twice_opens_one_run(db, scenario, closed):
    assert runs.close_session(db, scenario.session.id, CLOSED) == closed
    with db.connect() as c:
        assert c.execute(select(func.count()).select_from(T["runs"])).scalar_one() == 1
        assert queries.session_row(c, scenario.session.id).state == "closed"


def test_r1_closing_an_unknown_session_is_refused_in_one_sentence(db):
    with pytest.raises(ServiceError, match="unknown session nope"):
        runs.close_session(db, "nope", CLOSED)


def test_loading_the_same_inputs_again_changes_nothing_and_other_inputs_are_refused(db, scenario, closed):
    assert runs.store_scenario(db, scenario, CLOSED) == scenario.session.id
    fewer = scenario.__class__(**{**scenario.__dict__, "orders": scenario.orders.iloc[1:]})
    with pytest.raises(ServiceError, match="already loaded with other inputs"):
        runs.store_scenario(db, fewer, CLOSED)


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
        read = queries.lines(c, closed, queries.run_row(c, closed).session_id)
    delivered = read.deliveries.groupby("order_id")["vials"].sum()
    allocated = read.lines.set_index("order_id")["allocated"]
    assert (allocated[allocated > 0] == delivered.reindex(allocated[allocated > 0].index)).all()
    assert set(delivered.index) <= set(allocated[allocated > 0].index)


def test_a_step_of_an_unknown_run_is_refused(db):
    with pytest.raises(ServiceError, match="unknown run 99"):
        runs.allocate_run(db, 99, CLOSED)


def test_r9_the_outbox_has_one_row_per_officine_that_ordered_and_per_named_professional(db, scenario, closed):
    runs.allocate_run(db, closed, CLOSED)
    runs.schedule_run(db, closed, CLOSED)
    confirmations.prepare_confirmations(db, closed, CLOSED)
    orders = scenario.orders
    officines = set(orders["finess"]) & set(scenario.pharmacies["finess"])
    named = set(orders.loc[orders["effector"].isin(NAMED_KINDS), "rpps"]) & set(scenario.professionals["rpps"])
    with db.connect() as c:
        outbox = queries.outbox_rows(c, closed)
    assert sorted(outbox["recipient_id"]) == sorted(officines | named)
    assert set(outbox["state"]) == {"pending"}
    assert outbox["message_id"].is_unique
    kinds = dict(zip(outbox["recipient_id"], outbox["recipient_kind"]))
    assert {kinds[f] for f in officines} == {"officine"}
    assert {kinds[r] for r in named} <= set(NAMED_KINDS)


def test_a_failure_for_good_is_kept_on_the_run_for_those_who_wait(db, scenario, closed):
    runs.record_failure(db, "pipeline.allocate", closed, "OperationalError: the database went away")
    state = runs.progress(db, scenario.session.id)
    assert state["run"] == closed
    assert state["error"] == "pipeline.allocate: OperationalError: the database went away"


def test_progress_names_the_step_a_run_has_reached(db, scenario, closed):
    assert runs.progress(db, scenario.session.id)["step"] == "allocating"
    runs.allocate_run(db, closed, CLOSED)
    assert runs.progress(db, scenario.session.id)["step"] == "allocated"
    runs.schedule_run(db, closed, CLOSED)
    confirmations.prepare_confirmations(db, closed, CLOSED)
    assert runs.progress(db, scenario.session.id)["step"] == "prepared"


def test_depot_day_changes_win_over_the_session_s_for_the_same_day():
    session_days = pd.DataFrame({"depot_id": ["D-1", "D-2"], "date": [pd.Timestamp("2021-06-21").date()] * 2,
                                 "capacity_vials": [100, 50]})
    changed = runs.depot_days_with_changes(
        session_days, {"depot_days": [{"depot_id": "D-1", "date": "2021-06-21", "capacity_vials": 0}]})
    assert dict(zip(changed["depot_id"], changed["capacity_vials"])) == {"D-1": 0, "D-2": 50}
