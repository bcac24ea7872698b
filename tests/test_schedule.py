"""The delivery scheduler (R8, R11) on hand-built frames, with properties, a brute-force optimum
and the conformance scenarios (tests/conformance)."""

from __future__ import annotations

import datetime as dt
import itertools
import tomllib
from functools import lru_cache

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from pipeline.domain.rules import Vaccine
from pipeline.domain.calendar import parse_weekdays
from pipeline.domain.schedule import DELIVERY_COLUMNS, schedule_deliveries
from tests.conftest import EXAMPLES

MON, TUE, WED, THU, FRI, SAT = (dt.date(2021, 6, 21) + dt.timedelta(days=k) for k in range(6))
PROPERTY = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def vaccine(first: dt.date = MON, last: dt.date = FRI, box: int = 1) -> Vaccine:
    return Vaccine(label="Vaccin", doses_per_vial=10, box_vials=box, deliver_from=first, deliver_by=last)


JANSSEN = {"janssen": vaccine()}


def lines(*rows: tuple) -> pd.DataFrame:
    """Lines from (order_id, allocated[, vaccine[, depot_id]]), ranked in the order given."""
    return pd.DataFrame([{"order_id": row[0], "finess": f"0100000{number:02d}",
                          "depot_id": row[3] if len(row) > 3 else "D-1",
                          "vaccine": row[2] if len(row) > 2 else "janssen",
                          "allocated": row[1], "rank": number} for number, row in enumerate(rows)],
                        columns=["order_id", "finess", "depot_id", "vaccine", "allocated", "rank"])


def depots(*rows: tuple[str, int, str]) -> pd.DataFrame:
    return pd.DataFrame(rows or [("D-1", 10, "Mon-Fri")], columns=["depot_id", "capacity_vials", "weekdays"])


def depot_days(*rows: tuple[str, dt.date, int]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["depot_id", "date", "capacity_vials"])


def delivered(schedule: pd.DataFrame, order_id: str | None = None) -> list[tuple[dt.date | None, int]]:
    """(date, vials) of one line's rows, or of every row."""
    rows = schedule if order_id is None else schedule[schedule["order_id"] == order_id]
    return [(date, int(vials)) for date, vials in zip(rows["delivery_date"], rows["vials"])]


def on_time(schedule: pd.DataFrame) -> int:
    return int(schedule.loc[schedule["status"] == "scheduled", "vials"].sum())


# ---- a literal reference for the rules, row by row -------------------------------------------

def capacity(depots: pd.DataFrame, overrides: pd.DataFrame, depot_id: str, date: dt.date) -> int:
    for row in overrides.itertuples():
        if row.depot_id == depot_id and row.date == date:
            return int(row.capacity_vials)
    depot = depots[depots["depot_id"] == depot_id].iloc[0]
    return int(depot["capacity_vials"]) if date.weekday() in parse_weekdays(depot["weekdays"]) else 0


def assert_r8_invariants(schedule, lines, depots, overrides, vaccines, start=None, frozen=None):
    assert list(schedule.columns) == DELIVERY_COLUMNS
    fixed = set() if frozen is None else set(zip(frozen["order_id"], frozen["delivery_date"]))
    by_line = {row.order_id: row for row in lines.itertuples()}
    # Nothing lost: each line's rows add up to its allocated vials, and every row is positive.
    assert (schedule["vials"] > 0).all()
    assert schedule.groupby("order_id")["vials"].sum().to_dict() == {
        row.order_id: row.allocated for row in lines.itertuples() if row.allocated > 0}
    # One row per line and day, the pending one without a date, sorted by order_id then date.
    assert not schedule.duplicated(["order_id", "delivery_date"]).any()
    for row in schedule.itertuples():
        assert (row.status == "pending") == (row.delivery_date is None)
        assert row.status in ("scheduled", "pending")
        assert row.delivery_date is None or type(row.delivery_date) is dt.date
    keys = [(row.order_id, row.delivery_date is None, row.delivery_date or dt.date.min)
            for row in schedule.itertuples()]
    assert keys == sorted(keys)
    new = schedule[[(o, d) not in fixed for o, d in zip(schedule["order_id"], schedule["delivery_date"])]]
    for row in new.itertuples():
        rules = vaccines[row.vaccine]
        line = by_line[row.order_id]
        assert (row.depot_id, row.vaccine, row.finess) == (line.depot_id, line.vaccine, line.finess)
        assert row.vials % rules.box_vials == 0  # whole boxes
        if row.delivery_date is not None:  # inside the vaccine's window, after the change
            assert rules.deliver_from <= row.delivery_date <= rules.deliver_by
            assert start is None or row.delivery_date > start
    # A depot's capacity per day, all vaccines together, frozen rows of withdrawn lines included.
    load = schedule[schedule["status"] == "scheduled"][["depot_id", "delivery_date", "vials"]]
    if frozen is not None:
        gone = frozen[~frozen["order_id"].isin(lines["order_id"])]
        load = pd.concat([load, gone[["depot_id", "delivery_date", "vials"]]])
    for (depot_id, date), vials in load.groupby(["depot_id", "delivery_date"])["vials"].sum().items():
        assert vials <= capacity(depots, overrides, depot_id, date), (depot_id, date)
    # First come, first served within a depot and vaccine, for what this run schedules.
    for _, group in lines.sort_values("rank").groupby(["depot_id", "vaccine"]):
        seen_pending, latest = False, dt.date.min
        for order_id in group["order_id"]:
            rows = new[new["order_id"] == order_id]
            dates = [d for d in rows["delivery_date"] if d is not None]
            assert not (seen_pending and dates), f"{order_id} is on time after an earlier line waits"
            assert not dates or min(dates) >= latest, f"{order_id} is delivered before an earlier line"
            latest = max(dates, default=latest)
            seen_pending |= (rows["status"] == "pending").any()


def brute_force_on_time(lines, depots, overrides, vaccines, start=None, used=None) -> int:
    """The most vials deliverable on time: every split of every day between the vaccines."""
    total = 0
    for depot_id, group in lines.groupby("depot_id"):
        keys = sorted(group["vaccine"].unique())
        demand = tuple(int(group.loc[group["vaccine"] == key, "allocated"].sum()) for key in keys)
        days = sorted({vaccines[k].deliver_from + dt.timedelta(days=i) for k in keys
                       for i in range((vaccines[k].deliver_by - vaccines[k].deliver_from).days + 1)})
        days = [d for d in days if start is None or d > start]
        caps = [max(0, capacity(depots, overrides, depot_id, d) - (used or {}).get((depot_id, d), 0))
                for d in days]

        @lru_cache(maxsize=None)
        def best(k: int, rem: tuple[int, ...]) -> int:
            if k == len(days):
                return 0
            choices = [range(0, min(r, caps[k]) + 1, vaccines[key].box_vials)
                       if vaccines[key].deliver_from <= days[k] <= vaccines[key].deliver_by else (0,)
                       for key, r in zip(keys, rem)]
            return max(sum(x) + best(k + 1, tuple(r - v for r, v in zip(rem, x)))
                       for x in itertools.product(*choices) if sum(x) <= caps[k])

        total += best(0, demand)
    return total


# ---- hand-built cases -------------------------------------------------------------------------

def test_r8_parse_weekdays_reads_ranges_lists_and_both_mixed():
    assert parse_weekdays("Mon-Fri") == (0, 1, 2, 3, 4)
    assert parse_weekdays("Mon,Wed,Fri") == (0, 2, 4)
    assert parse_weekdays("Mon-Wed,Sat") == (0, 1, 2, 5)
    assert parse_weekdays(" sat , Mon - tue ") == (0, 1, 5)
    assert parse_weekdays("Sun") == (6,)


@pytest.mark.parametrize("text", ["", "  ", "Lun-Ven", "Mon-", "Fri-Mon", "Mon-Wed-Fri", "Mon;Tue", "Mon,,Tue"])
def test_r8_parse_weekdays_refuses_bad_text_with_one_sentence(text):
    with pytest.raises(ValueError) as error:
        parse_weekdays(text)
    message = str(error.value)
    assert message.startswith("bad weekdays") and "\n" not in message


def test_r8_depot_delivers_only_on_its_weekdays():
    schedule = schedule_deliveries(lines(("A-1", 250)), depots(("D-1", 100, "Mon,Wed,Fri")),
                                   depot_days(), JANSSEN)
    assert delivered(schedule) == [(MON, 100), (WED, 100), (FRI, 50)]


def test_r8_closed_override_day_gets_no_delivery():
    schedule = schedule_deliveries(lines(("A-1", 30)), depots(), depot_days(("D-1", TUE, 0)), JANSSEN)
    assert delivered(schedule) == [(MON, 10), (WED, 10), (THU, 10)]


def test_r8_exceptional_override_day_opens_a_non_delivery_weekday():
    schedule = schedule_deliveries(lines(("A-1", 20)), depots(("D-1", 10, "Mon")),
                                   depot_days(("D-1", SAT, 5)), {"janssen": vaccine(MON, SAT)})
    assert delivered(schedule) == [(MON, 10), (SAT, 5), (None, 5)]


def test_r8_override_changes_one_days_capacity():
    schedule = schedule_deliveries(lines(("A-1", 40)), depots(), depot_days(("D-1", MON, 3), ("D-1", WED, 14)),
                                   JANSSEN)
    assert delivered(schedule) == [(MON, 3), (TUE, 10), (WED, 14), (THU, 10), (FRI, 3)]


def test_r8_override_of_another_depot_changes_nothing_here():
    schedule = schedule_deliveries(lines(("A-1", 10)), depots(("D-1", 10, "Mon-Fri"), ("D-2", 10, "Mon-Fri")),
                                   depot_days(("D-2", MON, 0)), JANSSEN)
    assert delivered(schedule) == [(MON, 10)]


def test_r8_capacity_is_shared_by_all_vaccines_of_a_depot():
    one_day = {"janssen": vaccine(MON, MON), "astrazeneca": vaccine(MON, MON)}
    schedule = schedule_deliveries(lines(("A-1", 8, "janssen"), ("A-2", 8, "astrazeneca")), depots(),
                                   depot_days(), one_day)
    # Same window, same unit: one queue in submission order across the two vaccines.
    assert delivered(schedule, "A-1") == [(MON, 8)]
    assert delivered(schedule, "A-2") == [(MON, 2), (None, 6)]


def test_r8_depots_have_their_own_capacity():
    schedule = schedule_deliveries(lines(("A-1", 10, "janssen", "D-1"), ("A-2", 10, "janssen", "D-2")),
                                   depots(("D-1", 10, "Mon"), ("D-2", 10, "Mon")), depot_days(),
                                   {"janssen": vaccine(MON, MON)})
    assert delivered(schedule) == [(MON, 10), (MON, 10)]


def test_r8_vaccine_is_delivered_only_between_deliver_from_and_deliver_by():
    schedule = schedule_deliveries(lines(("A-1", 250)), depots(("D-1", 100, "Mon-Sun")), depot_days(),
                                   {"janssen": vaccine(THU, FRI)})
    assert delivered(schedule) == [(THU, 100), (FRI, 100), (None, 50)]


def test_r8_line_is_split_across_days_in_whole_boxes():
    schedule = schedule_deliveries(lines(("A-1", 50, "moderna")), depots(("D-1", 25, "Mon-Fri")), depot_days(),
                                   {"moderna": vaccine(MON, TUE, box=10)})
    assert delivered(schedule) == [(MON, 20), (TUE, 20), (None, 10)]


def test_r8_what_cannot_be_delivered_by_deliver_by_is_pending_without_date():
    schedule = schedule_deliveries(lines(("A-1", 7)), depots(("D-1", 5, "Mon")), depot_days(),
                                   {"janssen": vaccine(MON, MON)})
    assert schedule[["delivery_date", "vials", "status"]].values.tolist() == [
        [MON, 5, "scheduled"], [None, 2, "pending"]]


def test_r8_line_with_no_open_day_in_its_window_is_all_pending():
    schedule = schedule_deliveries(lines(("A-1", 7)), depots(("D-1", 5, "Sat")), depot_days(), JANSSEN)
    assert delivered(schedule) == [(None, 7)]


def test_r8_earlier_order_is_served_first_within_depot_and_vaccine():
    schedule = schedule_deliveries(lines(("A-3", 4), ("A-1", 4), ("A-2", 4)), depots(("D-1", 5, "Mon-Fri")),
                                   depot_days(), {"janssen": vaccine(MON, TUE)})
    assert delivered(schedule, "A-3") == [(MON, 4)]
    assert delivered(schedule, "A-1") == [(MON, 1), (TUE, 3)]
    assert delivered(schedule, "A-2") == [(TUE, 2), (None, 2)]


def test_r8_earlier_deadline_takes_the_shared_day_first():
    session = {"janssen": vaccine(MON, MON), "astrazeneca": vaccine(MON, TUE)}
    schedule = schedule_deliveries(lines(("A-1", 10, "astrazeneca"), ("A-2", 10, "janssen")), depots(),
                                   depot_days(), session)
    assert delivered(schedule, "A-2") == [(MON, 10)]
    assert delivered(schedule, "A-1") == [(TUE, 10)]


def test_r8_box_takes_the_day_its_units_would_strand():
    # Monday 15 vials, Tuesday 10. Earliest deadline first gives Monday to the 10 Janssen vials
    # due that day and strands 5: the second Moderna box waits. A box and 5 vials fill Monday.
    session = {"janssen": vaccine(MON, MON), "moderna": vaccine(MON, TUE, box=10)}
    schedule = schedule_deliveries(lines(("A-1", 10, "janssen"), ("A-2", 10, "moderna"), ("A-3", 10, "moderna")),
                                   depots(("D-1", 0, "Mon-Fri")), depot_days(("D-1", MON, 15), ("D-1", TUE, 10)),
                                   session)
    assert on_time(schedule) == 25
    assert delivered(schedule, "A-1") == [(MON, 5), (None, 5)]


def test_r8_box_goes_to_the_day_the_units_do_not_need():
    session = {"janssen": vaccine(MON, MON), "moderna": vaccine(MON, TUE, box=10)}
    schedule = schedule_deliveries(lines(("A-1", 10, "moderna"), ("A-2", 10, "janssen")), depots(),
                                   depot_days(), session)
    assert delivered(schedule, "A-2") == [(MON, 10)]
    assert delivered(schedule, "A-1") == [(TUE, 10)]


def test_r8_boxes_of_several_sizes_fill_a_day_together():
    session = {"moderna": vaccine(MON, MON, box=10), "pfizer": vaccine(MON, MON, box=5)}
    schedule = schedule_deliveries(lines(("A-1", 5, "pfizer"), ("A-2", 10, "moderna"), ("A-3", 5, "pfizer")),
                                   depots(("D-1", 15, "Mon")), depot_days(), session)
    assert on_time(schedule) == 15
    assert delivered(schedule, "A-3") == [(None, 5)]


def test_r8_units_make_room_for_a_box_when_they_can_go_the_next_day():
    # Monday 11 vials, Tuesday 23. Serving the 4 Janssen vials first on Monday leaves no room
    # for a Moderna box; one vial on Monday and three on Tuesday deliver every Moderna box.
    session = {"janssen": vaccine(MON, TUE), "moderna": vaccine(MON, WED, box=10),
               "pfizer": vaccine(TUE, WED, box=5)}
    schedule = schedule_deliveries(
        lines(("A-1", 4, "janssen"), ("A-2", 5, "pfizer"), ("A-3", 10, "moderna"), ("A-4", 10, "moderna"),
              ("A-5", 10, "moderna")),
        depots(("D-1", 0, "Mon-Fri")), depot_days(("D-1", MON, 11), ("D-1", TUE, 23)), session)
    assert on_time(schedule) == 34
    assert delivered(schedule, "A-2") == [(None, 5)]


def test_r8_two_large_boxes_fill_a_day_better_than_one_of_each_size():
    # Tuesday's 22 vials take two Moderna boxes (20), not a Pfizer box of 5 and one of 10 (15).
    session = {"moderna": vaccine(MON, THU, box=10), "pfizer": vaccine(TUE, WED, box=5)}
    schedule = schedule_deliveries(
        lines(("A-1", 5, "pfizer"), ("A-2", 10, "moderna"), ("A-3", 10, "moderna"), ("A-4", 10, "moderna")),
        depots(("D-1", 0, "Mon-Fri")), depot_days(("D-1", MON, 6), ("D-1", TUE, 22), ("D-1", WED, 3)), session)
    assert on_time(schedule) == 20
    assert delivered(schedule, "A-2") == [(TUE, 10)] and delivered(schedule, "A-3") == [(TUE, 10)]


def test_r8_delivers_as_early_as_capacity_allows():
    schedule = schedule_deliveries(lines(("A-1", 30), ("A-2", 30)), depots(("D-1", 100, "Mon-Fri")),
                                   depot_days(), JANSSEN)
    assert delivered(schedule) == [(MON, 30), (MON, 30)]


def test_r8_output_has_the_contract_columns_one_row_per_line_and_day_by_order_id():
    schedule = schedule_deliveries(lines(("B-2", 12), ("A-9", 12), ("B-1", 3)), depots(("D-1", 10, "Mon-Fri")),
                                   depot_days(), {"janssen": vaccine(MON, TUE)})
    assert list(schedule.columns) == DELIVERY_COLUMNS
    assert schedule[["order_id", "delivery_date", "vials", "status"]].values.tolist() == [
        ["A-9", TUE, 8, "scheduled"], ["A-9", None, 4, "pending"],
        ["B-1", None, 3, "pending"],
        ["B-2", MON, 10, "scheduled"], ["B-2", TUE, 2, "scheduled"]]
    assert schedule["finess"].tolist() == ["010000001", "010000001", "010000002", "010000000", "010000000"]
    assert schedule.index.tolist() == list(range(5))


@pytest.mark.parametrize("ids", [["A-10", "A-9", "A-1", "A-100", "B", "A-0000000001", "A-000000000"],
                                 ["É-2", "E-3", "A-1", "e-1"]])
def test_r8_rows_are_sorted_by_order_id_as_text_whatever_its_length_or_alphabet(ids):
    schedule = schedule_deliveries(lines(*[(order_id, 1) for order_id in ids]), depots(("D-1", 100, "Mon-Fri")),
                                   depot_days(), JANSSEN)
    assert schedule["order_id"].tolist() == sorted(ids)


def test_r8_extra_columns_are_ignored_and_inputs_are_not_mutated():
    given_lines = lines(("A-1", 12), ("A-2", 3)).assign(requested=99, status="served")
    given_depots, given_days = depots(), depot_days(("D-1", TUE, 0))
    copies = [frame.copy(deep=True) for frame in (given_lines, given_depots, given_days)]
    schedule_deliveries(given_lines, given_depots, given_days, JANSSEN)
    for frame, copy in zip((given_lines, given_depots, given_days), copies):
        pd.testing.assert_frame_equal(frame, copy)


def test_r8_no_lines_give_an_empty_schedule_with_the_columns():
    schedule = schedule_deliveries(lines(), depots(), depot_days(), JANSSEN)
    assert list(schedule.columns) == DELIVERY_COLUMNS and len(schedule) == 0


@pytest.mark.parametrize("frames, words", [
    ((lines(("A-1", 5, "janssen", "D-9")), depots(), depot_days()), "D-9"),
    ((lines(("A-1", 5, "sputnik")), depots(), depot_days()), "sputnik"),
    ((lines(("A-1", 5)), depots(("D-1", 5, "Lun-Ven")), depot_days()), "D-1"),
    ((lines(("A-1", 5), ("A-1", 3)), depots(), depot_days()), "A-1"),
    ((lines(("A-1", 15, "moderna")), depots(), depot_days()), "boxes of 10"),
    ((lines(("A-1", 5)), depots(), depot_days(("D-1", MON, 3), ("D-1", MON, 4))), "twice"),
])
def test_r8_inconsistent_input_is_refused_with_one_sentence(frames, words):
    with pytest.raises(ValueError, match=words) as error:
        schedule_deliveries(*frames, {"janssen": vaccine(), "moderna": vaccine(box=10)})
    assert "\n" not in str(error.value)


# ---- R11: reallocation --------------------------------------------------------------------------

def test_r11_new_deliveries_are_dated_strictly_after_start():
    schedule = schedule_deliveries(lines(("A-1", 25)), depots(), depot_days(), JANSSEN, start=TUE)
    assert delivered(schedule) == [(WED, 10), (THU, 10), (FRI, 5)]


def test_r11_start_after_deliver_by_leaves_everything_pending():
    schedule = schedule_deliveries(lines(("A-1", 25)), depots(), depot_days(), JANSSEN, start=FRI)
    assert delivered(schedule) == [(None, 25)]


def frozen(*rows: tuple[str, dt.date, int]) -> pd.DataFrame:
    return pd.DataFrame([(order_id, "D-1", "janssen", date, vials) for order_id, date, vials in rows],
                        columns=["order_id", "depot_id", "vaccine", "delivery_date", "vials"])


def test_r11_frozen_rows_stay_use_their_day_and_count_toward_their_line():
    schedule = schedule_deliveries(lines(("A-0", 5), ("A-1", 30)), depots(), depot_days(), JANSSEN,
                                   start=MON, frozen=frozen(("A-1", MON, 10)))
    assert delivered(schedule, "A-1") == [(MON, 10), (TUE, 5), (WED, 10), (THU, 5)]
    assert delivered(schedule, "A-0") == [(TUE, 5)]


def test_r11_frozen_rows_of_a_withdrawn_line_still_use_capacity():
    schedule = schedule_deliveries(lines(("A-1", 10)), depots(), depot_days(), JANSSEN,
                                   frozen=frozen(("A-9", MON, 10), ("A-9", TUE, 4)))
    assert delivered(schedule) == [(TUE, 6), (WED, 4)]


def test_r11_fully_delivered_line_keeps_only_its_frozen_rows():
    schedule = schedule_deliveries(lines(("A-1", 10)), depots(), depot_days(), JANSSEN, start=TUE,
                                   frozen=frozen(("A-1", MON, 6), ("A-1", TUE, 4)))
    assert delivered(schedule) == [(MON, 6), (TUE, 4)]
    assert (schedule["status"] == "scheduled").all()


def test_r11_frozen_vials_beyond_the_allocated_are_refused():
    with pytest.raises(ValueError, match="A-1"):
        schedule_deliveries(lines(("A-1", 5)), depots(), depot_days(), JANSSEN, frozen=frozen(("A-1", MON, 6)))


# ---- properties ------------------------------------------------------------------------------

WEEKDAY_TEXTS = ["Mon-Fri", "Mon,Wed,Fri", "Tue,Thu", "Mon-Sun", "Mon-Wed,Sat", "Sat"]
BASE = dt.date(2021, 6, 17)


@st.composite
def sessions(draw, max_days: int = 12, max_lines: int = 25, max_capacity: int = 40, max_boxes: int = 6):
    """A random session: up to 3 depots, 3 vaccines (boxes of 1, 2, 5 or 10), overrides, lines."""
    vaccines = {}
    for key in draw(st.lists(st.sampled_from(["moderna", "janssen", "astrazeneca"]), min_size=1, max_size=3,
                             unique=True)):
        first = BASE + dt.timedelta(days=draw(st.integers(0, max_days - 1)))
        last = first + dt.timedelta(days=draw(st.integers(0, max_days - 1 - (first - BASE).days)))
        vaccines[key] = vaccine(first, last, box=draw(st.sampled_from([1, 1, 2, 5, 10])))
    depot_ids = [f"D-{i}" for i in range(draw(st.integers(1, 3)))]
    depot_frame = pd.DataFrame({"depot_id": depot_ids,
                                "capacity_vials": [draw(st.integers(0, max_capacity)) for _ in depot_ids],
                                "weekdays": [draw(st.sampled_from(WEEKDAY_TEXTS)) for _ in depot_ids]})
    overrides = draw(st.lists(st.tuples(st.sampled_from(depot_ids), st.integers(0, max_days - 1),
                                        st.integers(0, max_capacity)), max_size=4, unique_by=lambda o: o[:2]))
    override_frame = depot_days(*[(d, BASE + dt.timedelta(days=k), c) for d, k, c in overrides])
    keys = sorted(vaccines)
    rows = draw(st.lists(st.tuples(st.sampled_from(depot_ids), st.sampled_from(keys),
                                   st.integers(1, max_boxes)), max_size=max_lines))
    ranks = draw(st.permutations(range(len(rows))))
    line_frame = pd.DataFrame(
        [{"order_id": f"A-{draw(st.integers(0, 9))}{number:03d}", "finess": f"0{number:08d}", "depot_id": d,
          "vaccine": key, "allocated": boxes * vaccines[key].box_vials, "rank": rank}
         for number, ((d, key, boxes), rank) in enumerate(zip(rows, ranks))],
        columns=["order_id", "finess", "depot_id", "vaccine", "allocated", "rank"])
    return line_frame, depot_frame, override_frame, vaccines


def shuffled(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    return frame.sample(frac=1, random_state=seed).reset_index(drop=True)


@PROPERTY
@given(sessions(), st.integers(0, 2**16))
def test_r8_random_sessions_keep_every_invariant_whatever_the_row_order(session, seed):
    line_frame, depot_frame, override_frame, vaccines = session
    schedule = schedule_deliveries(line_frame, depot_frame, override_frame, vaccines)
    assert_r8_invariants(schedule, line_frame, depot_frame, override_frame, vaccines)
    again = schedule_deliveries(shuffled(line_frame, seed), shuffled(depot_frame, seed),
                                shuffled(override_frame, seed), dict(reversed(list(vaccines.items()))))
    pd.testing.assert_frame_equal(schedule, again)


@settings(PROPERTY, max_examples=200)
@given(sessions(max_days=5, max_lines=8, max_capacity=24, max_boxes=3))
def test_r8_on_time_vials_equal_the_brute_force_optimum(session):
    line_frame, depot_frame, override_frame, vaccines = session
    schedule = schedule_deliveries(line_frame, depot_frame, override_frame, vaccines)
    assert schedule.attrs["optimal"]
    assert on_time(schedule) == brute_force_on_time(line_frame, depot_frame, override_frame, vaccines)


@PROPERTY
@given(sessions(max_days=6, max_lines=10, max_capacity=24, max_boxes=3), st.integers(0, 5), st.data())
def test_r11_rescheduling_after_start_keeps_frozen_rows_invariants_and_optimum(session, offset, data):
    line_frame, depot_frame, override_frame, vaccines = session
    first = schedule_deliveries(line_frame, depot_frame, override_frame, vaccines)
    start, next_day = BASE + dt.timedelta(days=offset), BASE + dt.timedelta(days=offset + 1)
    left_depot = (first["status"] == "scheduled") & first["delivery_date"].map(lambda d: d is not None and d <= start)
    kept = first.loc[left_depot, ["order_id", "depot_id", "vaccine", "delivery_date", "vials"]].reset_index(drop=True)
    # The operator withdraws some lines, and every depot closes the day after the change.
    withdrawn = data.draw(st.sets(st.sampled_from(line_frame["order_id"].tolist()))) if len(line_frame) else set()
    still = line_frame[~line_frame["order_id"].isin(withdrawn)].reset_index(drop=True)
    overrides = pd.concat([override_frame[override_frame["date"] != next_day],
                           depot_days(*[(d, next_day, 0) for d in depot_frame["depot_id"]])], ignore_index=True)

    schedule = schedule_deliveries(still, depot_frame, overrides, vaccines, start=start, frozen=kept)

    assert_r8_invariants(schedule, still, depot_frame, overrides, vaccines, start=start, frozen=kept)
    kept_of_still = kept[kept["order_id"].isin(still["order_id"])]
    assert len(schedule.merge(kept_of_still, on=list(kept.columns))) == len(kept_of_still)  # unchanged
    # The rest of each line gets the most the capacity left after the frozen rows allows.
    used = kept.groupby(["depot_id", "delivery_date"])["vials"].sum().to_dict()
    done = still["order_id"].map(kept.groupby("order_id")["vials"].sum()).fillna(0).astype(int)
    best = brute_force_on_time(still.assign(allocated=still["allocated"] - done), depot_frame, overrides,
                               vaccines, start=start, used=used)
    assert on_time(schedule) - int(kept_of_still["vials"].sum()) == best


# ---- the conformance scenarios (tests/conformance) -------------------------------------------------------------

def example(name: str):
    folder = EXAMPLES / name
    session = tomllib.loads((folder / "session.toml").read_text(encoding="utf-8"))
    vaccines = {key: Vaccine(**rules) for key, rules in session["vaccines"].items()}
    text = {"order_id": str, "finess": str, "depot_id": str}
    allocations = pd.read_csv(folder / "expected" / "allocations.csv", dtype=text)
    orders = pd.read_csv(folder / "orders.csv", dtype=str).drop_duplicates("order_id")
    orders["instant"] = pd.to_datetime(orders["submitted_at"], utc=True, errors="coerce", format="ISO8601")
    orders = orders.dropna(subset=["instant"]).sort_values(["instant", "order_id"])
    orders["rank"] = np.arange(len(orders))
    pharmacies = pd.read_csv(folder / "pharmacies.csv", dtype=text)
    served = allocations[allocations["allocated"] > 0]
    line_frame = (served.merge(orders[["order_id", "rank"]], on="order_id")
                  .merge(pharmacies[["finess", "depot_id"]], on="finess"))
    assert len(line_frame) == len(served)
    depot_frame = pd.read_csv(folder / "depots.csv", dtype=text)
    overrides = pd.read_csv(folder / "depot_days.csv", dtype=text)
    overrides["date"] = pd.to_datetime(overrides["date"]).dt.date
    expected = pd.read_csv(folder / "expected" / "deliveries.csv", dtype=text)
    return line_frame, depot_frame, overrides, vaccines, expected


@pytest.mark.parametrize("name", ["notice-small", "mixed-small"])
def test_r8_example_scenario_keeps_every_invariant_and_delivers_at_least_the_expected_on_time(name):
    line_frame, depot_frame, overrides, vaccines, expected = example(name)
    schedule = schedule_deliveries(line_frame, depot_frame, overrides, vaccines)
    assert_r8_invariants(schedule, line_frame, depot_frame, overrides, vaccines)
    assert schedule.attrs["optimal"]
    assert on_time(schedule) >= on_time(expected)
