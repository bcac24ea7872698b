"""Reallocation (R10, R11) as a service: checked before anything is written, one version per request,
and a new version writing only to the recipients whose lines changed."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import func, select

from pipeline.adapters.db import lines, outbox, runs as run_rows, sessions
from pipeline.adapters.db.tables import Base
from pipeline.domain.changes import Changes
from pipeline.domain.outbox import line_states
from pipeline.domain.rules import NAMED_KINDS
from pipeline.services import confirmations, runs
from pipeline.services.reallocation import preview_reallocation, request_reallocation
from pipeline.services.refusals import (LineBelowDelivered, OperatorRequired, ReasonRequired, SessionNotClosed,
                                        UnknownDepot, UnknownOrderInChanges, UnknownVaccine)
from tests.services.conftest import CLOSED

LATER = CLOSED + dt.timedelta(days=1)


def versions(db) -> int:
    with db.connect() as c:
        return c.execute(select(func.count()).select_from(Base.metadata.tables["runs"])).scalar_one()


def a_served_line(db, run: int) -> dict:
    with db.connect() as c:
        read = lines.read(c, run, run_rows.run_row(c, run).session_id)
    named = read.lines[(read.lines["allocated"] > 0) & read.lines["effector"].isin(NAMED_KINDS)]
    return named.sort_values("order_id").iloc[0].to_dict()


def changes(**values) -> Changes:
    return Changes.model_validate({"effective": "2021-06-16", **values})


def test_r11_the_same_request_twice_makes_one_version(db, scenario, prepared):
    line = a_served_line(db, prepared)
    first, created = request_reallocation(db, scenario.session.id, changes(cancel=[line["order_id"]]), "Ops", "why",
                                          LATER)
    again, created_again = request_reallocation(db, scenario.session.id, changes(cancel=[line["order_id"]]), "Ops",
                                                "why", LATER)
    assert (created, created_again, again) == (True, False, first)
    assert versions(db) == 2


@pytest.mark.parametrize("request_, refusal, fields, said", [
    (dict(cancel=["A-000000"]), UnknownOrderInChanges, {"order_id": "A-000000"}, "Ligne inconnue : A-000000"),
    (dict(supply={"nope": 10}), UnknownVaccine, {"vaccine": "nope"}, "Stock : vaccin inconnu « nope »"),
    (dict(allocation={"nope": "pro_rata"}), UnknownVaccine, {"vaccine": "nope", "field": "allocation"},
     "Politique d'attribution (allocation) : vaccin inconnu « nope »"),
    (dict(remainders={"nope": False}), UnknownVaccine, {"vaccine": "nope", "field": "remainders"},
     "Reliquats (remainders) : vaccin inconnu « nope »"),
    (dict(depot_days=[{"depot_id": "D-NOPE", "date": "2021-06-21", "capacity_vials": 0}]), UnknownDepot,
     {"depot_id": "D-NOPE"}, "dépôt inconnu D-NOPE"),
])
def test_r11_a_request_that_does_not_fit_the_session_is_refused_and_writes_nothing(db, scenario, prepared, request_,
                                                                                   refusal, fields, said):
    with pytest.raises(refusal) as refused:
        request_reallocation(db, scenario.session.id, changes(**request_), "Ops", "why", LATER)
    assert {name: getattr(refused.value, name) for name in fields} == fields
    assert said in str(refused.value) and refused.value.status == 400
    assert versions(db) == 1


def test_r11_a_request_without_operator_or_reason_is_refused(db, scenario, prepared):
    with pytest.raises(OperatorRequired):
        request_reallocation(db, scenario.session.id, changes(), " ", "why", LATER)
    with pytest.raises(ReasonRequired):
        request_reallocation(db, scenario.session.id, changes(), "Ops", "", LATER)
    assert versions(db) == 1


def test_r11_a_session_still_open_has_nothing_to_reallocate(db, scenario):
    runs.store_scenario(db, scenario, CLOSED)
    with pytest.raises(SessionNotClosed) as refused:
        request_reallocation(db, scenario.session.id, changes(), "Ops", "why", LATER)
    assert refused.value.session_id == scenario.session.id and "pas encore close" in str(refused.value)


def test_r11_a_cancelled_line_emails_its_officine_and_professional_again_and_them_only_with_what_it_replaces(
        db, scenario, prepared):
    line = a_served_line(db, prepared)
    run, _ = request_reallocation(db, scenario.session.id, changes(cancel=[line["order_id"]]), "Ops", "why", LATER)
    for step in (runs.allocate_run, runs.schedule_run, confirmations.prepare_confirmations):
        assert step(db, run, LATER) == runs.DONE
    with db.connect() as c:
        before = outbox.outbox_rows(c, prepared).set_index("recipient_id")
        after = outbox.outbox_rows(c, run).set_index("recipient_id")
        old = lines.read(c, prepared, scenario.session.id)
        new = lines.read(c, run, scenario.session.id)
    assert {line["finess"], line["rpps"]} <= set(after.index)
    # Only the recipients of lines whose outcome or deliveries changed are written to.
    def state(read):
        pieces = read.deliveries.assign(piece=[(str(d), v) for d, v in zip(read.deliveries["delivery_date"],
                                                                          read.deliveries["vials"])])
        days = pieces.groupby("order_id")["piece"].agg(lambda x: tuple(sorted(x)))
        return {r.order_id: (r.allocated, r.reason, days.get(r.order_id, ())) for r in read.lines.itertuples()}
    was, now = state(old), state(new)
    changed = new.lines[[was[o] != now[o] for o in new.lines["order_id"]]]
    parties = set(changed["finess"]) | set(changed.loc[changed["effector"].isin(NAMED_KINDS), "rpps"])
    assert set(after.index) == parties & set(before.index)
    assert (after["replaces"] == before.loc[after.index, "message_id"]).all()


def test_r11_a_supply_that_would_leave_a_line_below_what_it_has_received_is_refused_before_anything_is_written(
        db, scenario, prepared):
    # Found by the preview's property test: the request was recorded, then its scheduling step failed.
    request = changes(effective="2021-06-18", supply={"astrazeneca": 331, "janssen": 494})
    with pytest.raises(LineBelowDelivered) as refused:
        request_reallocation(db, scenario.session.id, request, "Ops", "why", LATER)
    short = refused.value
    assert short.allocated < short.delivered and short.effective == dt.date(2021, 6, 18)
    assert re.fullmatch(r"Stock : la ligne A-\S+ recevrait \d+ flacons? de \w+, moins que les \d+ déjà livrés .*",
                        str(short))
    with pytest.raises(LineBelowDelivered):
        preview_reallocation(db, scenario.session.id, request)
    assert versions(db) == 1


def _change_kinds(db, run: int) -> dict:
    """One request of each kind R11 knows, fitted to the scenario's first run."""
    from tests.services.test_letters import EFFECTIVE, a_week_old_named_line

    line = a_served_line(db, run)
    given, to = a_week_old_named_line(db, run)
    with db.connect() as c:
        session_id = run_rows.run_row(c, run).session_id
        depot = sessions.registers(c, session_id, "depots")["depot_id"].iloc[0]
        totals = lines.read(c, run, session_id).lines.groupby("vaccine")["allocated"].sum()
    return {
        "cancel": changes(cancel=[line["order_id"]]),
        "supply": changes(effective="2021-06-18", supply={vaccine: int(total) + 50 for vaccine, total in totals.items()}),
        "depot day": changes(effective="2021-06-16", depot_days=[{"depot_id": depot, "date": "2021-06-21",
                                                                  "capacity_vials": 0}]),
        "redistribution": Changes.model_validate({"effective": EFFECTIVE.isoformat(), "redistribution": [
            {"order_id": given["order_id"], "vials": 2, "to_rpps": to["rpps"]}]}),
    }


@pytest.mark.parametrize("kind", ["cancel", "supply", "depot day", "redistribution"])
def test_r11_the_lines_the_database_finds_changed_give_the_same_recipients_as_comparing_both_runs_whole(
        db, scenario, prepared, kind):
    run, _ = request_reallocation(db, scenario.session.id, _change_kinds(db, prepared)[kind], "Ops", "why", LATER)
    for step in (runs.allocate_run, runs.schedule_run, confirmations.prepare_confirmations):
        assert step(db, run, LATER) == runs.DONE
    with db.connect() as c:
        row = run_rows.run_row(c, run)
        previous = run_rows.previous_run(c, row)
        found = set(lines.changed_lines(c, previous.id, run))
        old, new = lines.read(c, previous.id, row.session_id), lines.read(c, run, row.session_id)
        whole = confirmations.rewritten(c, row.session_id, previous, row.changes, new,
                                        outbox.recipients(c, row.session_id, run))
        written = outbox.outbox_rows(c, run)
    was = line_states(old.lines, old.deliveries).set_index("order_id")["state"]
    now = line_states(new.lines, new.deliveries).set_index("order_id")["state"]
    differ = {order_id for order_id, state in now.items() if was.get(order_id) != state}
    assert differ <= found  # every line whose email would change is found
    assert differ or kind == "redistribution"  # a redistribution changes no line's allocation or deliveries
    assert sorted(written["recipient_id"]) == sorted(whole["recipient_id"])


def test_r7_r11_a_policy_change_shares_the_supply_pro_rata_and_later_versions_keep_it(db, scenario, prepared):
    with db.connect() as c:
        first = lines.read(c, prepared, scenario.session.id).lines
    janssen = first[(first["vaccine"] == "janssen") & (first["capped"] > 0)]
    supply = int(janssen["capped"].sum()) // 2
    run, _ = request_reallocation(db, scenario.session.id, changes(supply={"janssen": supply},
                                                                   allocation={"janssen": "pro_rata"}), "Ops", "why",
                                  LATER)
    for step in (runs.allocate_run, runs.schedule_run, confirmations.prepare_confirmations):
        assert step(db, run, LATER) == runs.DONE
    with db.connect() as c:
        new = lines.read(c, run, scenario.session.id).lines.set_index("order_id").loc[janssen["order_id"]]
        stored = run_rows.run_row(c, run).changes
    share = janssen.set_index("order_id")["capped"] * supply / janssen["capped"].sum()
    assert int(new["allocated"].sum()) == supply
    assert ((new["allocated"] - share.apply(int)).isin([0, 1])).all()  # each line its share's floor, or one more
    assert (new["allocated"] <= new["capped"]).all() and stored.allocation == {"janssen": "pro_rata"}
    later, _ = request_reallocation(db, scenario.session.id, changes(remainders={"moderna": True}), "Ops", "why",
                                    LATER)
    with db.connect() as c:
        kept = run_rows.run_row(c, later).changes
    assert (kept.allocation, kept.remainders, kept.supply) == ({"janssen": "pro_rata"}, {"moderna": True},
                                                               {"janssen": supply})
