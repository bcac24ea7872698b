"""The preview of a reallocation (R11) against the reallocation itself: for random change files, the
run that follows a preview changes exactly the lines and emails exactly the recipients it named."""

from __future__ import annotations

import datetime as dt

from hypothesis import HealthCheck, given, settings, strategies as st
from sqlalchemy import create_engine, text
from sqlalchemy.pool import StaticPool

from pipeline.adapters.db import lines, migrate, outbox, runs as runs_db, sessions
from pipeline.adapters.files.scenario import load_scenario
from pipeline.domain.changes import Changes
from pipeline.domain.summary import summarise
from pipeline.services import confirmations, runs
from pipeline.services.reallocation import preview_reallocation, request_reallocation
from tests.conftest import EXAMPLES
from tests.services.conftest import CLOSED

SCENARIO = load_scenario(EXAMPLES / "notice-small")
ORDER_IDS = sorted(SCENARIO.orders["order_id"])
DEPOTS = sorted(SCENARIO.depots["depot_id"])
DAYS = [dt.date(2021, 6, 17) + dt.timedelta(days=k) for k in range(12)]
LATER = CLOSED + dt.timedelta(days=1)


def closed_and_confirmed():
    engine = create_engine("sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False})
    migrate(engine)
    run = runs.close_session(engine, runs.store_scenario(engine, SCENARIO, CLOSED), CLOSED)
    for step in (runs.allocate_run, runs.schedule_run, confirmations.prepare_confirmations):
        step(engine, run, CLOSED)
    return engine, run


def states(read) -> dict[str, tuple]:
    """Each line's allocation, reason and deliveries (date, vials), read from a stored run."""
    days: dict[str, list] = {}
    for order_id, day, vials in zip(read.deliveries["order_id"], read.deliveries["delivery_date"],
                                    read.deliveries["vials"]):
        days.setdefault(order_id, []).append((str(day), int(vials)))
    return {k: (int(a), r, sorted(days.get(k, [])))
            for k, a, r in zip(read.lines["order_id"], read.lines["allocated"], read.lines["reason"])}


def dump(engine) -> list[str]:
    with engine.connect() as c:
        return list(c.connection.driver_connection.iterdump())


change_files = st.fixed_dictionaries({
    "effective": st.sampled_from(["2021-06-16", "2021-06-18", "2021-06-21"]),
    "cancel": st.lists(st.sampled_from(ORDER_IDS), max_size=6, unique=True),
    "supply": st.dictionaries(st.sampled_from(sorted(SCENARIO.session.vaccines)), st.integers(200, 2000), max_size=3),
    "depot_days": st.lists(st.fixed_dictionaries({
        "depot_id": st.sampled_from(DEPOTS), "date": st.sampled_from(DAYS).map(dt.date.isoformat),
        "capacity_vials": st.sampled_from([0, 5, 50, 500])}), max_size=3, unique_by=lambda d: (d["depot_id"], d["date"])),
    "allocation": st.dictionaries(st.sampled_from(sorted(SCENARIO.session.vaccines)),
                                  st.sampled_from(["fcfs", "fcfs_fill", "pro_rata"]), max_size=2),
    "remainders": st.dictionaries(st.sampled_from(sorted(SCENARIO.session.vaccines)), st.booleans(), max_size=2),
})


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(change_files)
def test_r11_the_reallocation_after_a_preview_changes_the_lines_and_emails_the_recipients_it_named(request):
    """With policy changes (R7) among the changes, and the fairness figures the preview gives for after
    those the new version's summary gives."""
    engine, first = closed_and_confirmed()
    changes = Changes.model_validate(request)
    try:
        preview = preview_reallocation(engine, SCENARIO.session.id, changes)
    except Exception as refused:  # the request does not fit the session: the reallocation must refuse it too
        try:
            request_reallocation(engine, SCENARIO.session.id, changes, "Ops", "why", LATER)
        except type(refused) as same:
            assert str(same) == str(refused)
            return
        raise AssertionError(f"the preview refused what the reallocation accepts: {refused}")
    run, created = request_reallocation(engine, SCENARIO.session.id, changes, "Ops", "why", LATER)
    assert created and preview["version"] == 2
    for step in (runs.allocate_run, runs.schedule_run, confirmations.prepare_confirmations):
        assert step(engine, run, LATER) == runs.DONE
    with engine.connect() as c:
        old = lines.read(c, first, SCENARIO.session.id)
        new = lines.read(c, run, SCENARIO.session.id)
        emailed = sorted(outbox.outbox_rows(c, run)["recipient_id"])
    assert preview["recipients"] == emailed
    before, after = old.lines.set_index("order_id"), new.lines.set_index("order_id")
    for line in preview["lines"]:
        assert (line["allocated_before"], line["reason_before"]) == (before.at[line["order_id"], "allocated"],
                                                                     before.at[line["order_id"], "reason"])
        assert (line["allocated_after"], line["reason_after"]) == (after.at[line["order_id"], "allocated"],
                                                                   after.at[line["order_id"], "reason"])
    was, now = states(old), states(new)
    changed = sorted(k for k in ORDER_IDS if was[k] != now[k])
    assert [line["order_id"] for line in preview["lines"]] == changed
    for key, vials in preview["vials"].items():
        assert vials == {"before": int(before.loc[before["vaccine"] == key, "allocated"].sum()),
                         "after": int(after.loc[after["vaccine"] == key, "allocated"].sum())}
    with engine.connect() as c:
        summaries = [summarise(sessions.session_rules(c, SCENARIO.session.id), runs_db.run_row(c, r), read.lines,
                               read.deliveries, SCENARIO.pharmacies) for r, read in ((first, old), (run, new))]
    for key, figures in preview["fairness"].items():
        assert figures == {"before": summaries[0]["vaccines"][key]["fairness"],
                           "after": summaries[1]["vaccines"][key]["fairness"]}


def test_r11_a_preview_leaves_the_database_as_it_was():
    engine, _ = closed_and_confirmed()
    before = dump(engine)
    request = {"effective": "2021-06-18", "cancel": ORDER_IDS[:3], "supply": {"moderna": 500},
               "depot_days": [{"depot_id": DEPOTS[0], "date": "2021-06-21", "capacity_vials": 0}]}
    preview = preview_reallocation(engine, SCENARIO.session.id, Changes.model_validate(request))
    assert preview["lines"] and preview["recipients"]
    assert dump(engine) == before
    with engine.connect() as c:
        assert c.execute(text("select count(*) from runs")).scalar_one() == 1
