"""The metrics snapshot on the service tier: waiting emails age, every state shows, steps are timed."""

from __future__ import annotations

import datetime as dt

from pipeline.domain.vocabulary import EmailState
from pipeline.services import metrics

from .conftest import CLOSED


def test_emails_waiting_show_their_age_and_every_outbox_state_shows_even_at_zero(db, prepared):
    found = metrics.snapshot(db, CLOSED + dt.timedelta(minutes=5))
    states = {state: n for session, run, state, n in found.emails}
    assert set(states) == {state.value for state in EmailState}
    assert states["pending"] > 0 and states["sent"] == 0
    assert found.oldest_waiting == [(found.emails[0][0], 300.0)]


def test_each_step_s_last_duration_comes_from_the_run_s_stamps(db, closed):
    from pipeline.services import confirmations, runs

    for minutes, step in ((1, runs.allocate_run), (3, runs.schedule_run), (4, confirmations.prepare_confirmations)):
        step(db, closed, CLOSED + dt.timedelta(minutes=minutes))
    durations = {step: seconds for session, run, step, seconds in metrics.snapshot(db, CLOSED).steps}
    assert durations == {"allocate": 60.0, "schedule": 120.0, "prepare_confirmations": 60.0}


def test_vials_per_stage_add_up_scheduled_and_pending_to_allocated(db, prepared):
    vials = {}
    for session, run, vaccine, stage, n in metrics.snapshot(db, CLOSED).vials:
        vials.setdefault(vaccine, {})[stage] = n
    assert vials
    for vaccine, stages in vials.items():
        assert stages["scheduled"] + stages["pending"] == stages["allocated"] <= stages["requested"], vaccine
